"""The GCP path of the catalog refresh, `deploy.cloud.catalogs.gcp.fetch`, through the real
google-cloud-compute client (REST transport) against the fake Compute API on 127.0.0.1
(tests/support/gce/: a fake because nothing real serves the Compute API offline; every
request it gets is checked against Compute's discovery document and every answer against
the document's schemas), seeded with the catalog below: regions.list,
machineTypes.aggregatedList and acceleratorTypes.aggregatedList, so the client's own
parsing and paging are what is exercised."""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials

from deploy.cloud.catalogs import gcp
from tests.support.gce.server import running_fake_compute

PROJECT = "oceanlab-prod"


def _machine(name: str, cpus: int, memory_mb: int, gpu: tuple[str, int] | None = None, **extra) -> dict:
    body = {"name": name, "guestCpus": cpus, "memoryMb": memory_mb}
    if gpu:
        body["accelerators"] = [{"guestAcceleratorType": gpu[0], "guestAcceleratorCount": gpu[1]}]
    return {**body, **extra}


REGIONS = {"us-central1": ["us-central1-a", "us-central1-b"], "europe-west6": ["europe-west6-a"],
           "gone-west1": ["gone-west1-a"], "asia-east9": ["asia-east9-z"]}
MACHINE_TYPES = {
    "us-central1-a": [
        _machine("n1-standard-8", 8, 30720),
        _machine("g2-standard-24", 24, 98304, ("nvidia-l4", 2)),
        _machine("n1-old-2", 2, 7680, deprecated={"state": "DEPRECATED"}),
    ],
    "us-central1-b": [_machine("n1-standard-8", 8, 30720)],
    "europe-west6-a": [_machine("c4a-standard-4", 4, 16384)],
    "gone-west1-a": [_machine("n2-standard-2", 2, 8192)],
    # asia-east9-z: none, listed with Compute's NO_RESULTS_ON_PAGE warning
}
ACCELERATOR_TYPES = {
    "us-central1-a": [{"name": "nvidia-tesla-t4", "maximumCardsPerInstance": 4},
                      {"name": "nvidia-tesla-v100", "maximumCardsPerInstance": 8},
                      {"name": "nvidia-l4", "maximumCardsPerInstance": 8}],
    "europe-west6-a": [{"name": "nvidia-tesla-t4", "maximumCardsPerInstance": 4}],
}


@pytest.fixture
def fake_compute():
    with running_fake_compute(PROJECT) as fake:
        fake.seed_catalog(regions=REGIONS, down=("gone-west1",), machine_types=MACHINE_TYPES,
                          accelerator_types=ACCELERATOR_TYPES)
        yield fake


def test_fetch_from_the_compute_api(fake_compute) -> None:
    fresh = gcp.fetch(PROJECT, "2026-03-04", fake_compute.client_options(), AnonymousCredentials())
    assert sorted({r["id"] for r in fake_compute.requests}) == [
        "compute.acceleratorTypes.aggregatedList", "compute.machineTypes.aggregatedList", "compute.regions.list"]
    assert (fresh.date, fresh.source) == ("2026-03-04", gcp.SOURCE_API)
    assert fresh.zones == {"asia-east9": ("asia-east9-z",), "europe-west6": ("europe-west6-a",),
                           "us-central1": ("us-central1-a", "us-central1-b")}
    assert fresh.names() == ["c4a-standard-4", "g2-standard-24", "n1-standard-8"]  # no deprecated, no DOWN region

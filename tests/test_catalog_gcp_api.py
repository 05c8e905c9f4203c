"""The GCP path of the catalog refresh, `deploy.cloud.catalogs.gcp.fetch`, through the real
google-cloud-compute client (REST transport) against a fake Compute API on 127.0.0.1.

A fake because nothing real can serve the Compute API offline; it answers only the three
read-only calls the refresh makes (regions.list, machineTypes.aggregatedList,
acceleratorTypes.aggregatedList), with the field names of Compute's v1 discovery
document, so the client's own parsing and paging are what is exercised."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.auth.credentials import AnonymousCredentials

from deploy.cloud.catalogs import gcp
from render import catalog

PROJECT = "oceanlab-prod"
ZONE_URL = f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/"


def _machine(name: str, cpus: int, memory_mb: int, zone: str, gpu: tuple[str, int] | None = None, **extra) -> dict:
    body = {"kind": "compute#machineType", "name": name, "guestCpus": cpus, "memoryMb": memory_mb, "zone": zone}
    if gpu:
        body["accelerators"] = [{"guestAcceleratorType": gpu[0], "guestAcceleratorCount": gpu[1]}]
    return {**body, **extra}


ANSWERS = {
    f"/compute/v1/projects/{PROJECT}/regions": {
        "items": [
            {"name": "us-central1", "status": "UP", "zones": [ZONE_URL + "us-central1-a", ZONE_URL + "us-central1-b"]},
            {"name": "europe-west6", "status": "UP", "zones": [ZONE_URL + "europe-west6-a"]},
            {"name": "gone-west1", "status": "DOWN", "zones": [ZONE_URL + "gone-west1-a"]},
        ]
    },
    f"/compute/v1/projects/{PROJECT}/aggregated/machineTypes": {
        "items": {
            "zones/us-central1-a": {
                "machineTypes": [
                    _machine("n1-standard-8", 8, 30720, "us-central1-a"),
                    _machine("g2-standard-24", 24, 98304, "us-central1-a", ("nvidia-l4", 2)),
                    _machine("n1-old-2", 2, 7680, "us-central1-a", deprecated={"state": "DEPRECATED"}),
                ]
            },
            "zones/us-central1-b": {"machineTypes": [_machine("n1-standard-8", 8, 30720, "us-central1-b")]},
            "zones/europe-west6-a": {"machineTypes": [_machine("c4a-standard-4", 4, 16384, "europe-west6-a")]},
            "zones/gone-west1-a": {"machineTypes": [_machine("n2-standard-2", 2, 8192, "gone-west1-a")]},
            "zones/asia-east9-z": {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "none"}},
        }
    },
    f"/compute/v1/projects/{PROJECT}/aggregated/acceleratorTypes": {
        "items": {
            "zones/us-central1-a": {
                "acceleratorTypes": [
                    {"name": "nvidia-tesla-t4", "maximumCardsPerInstance": 4},
                    {"name": "nvidia-tesla-v100", "maximumCardsPerInstance": 8},
                    {"name": "nvidia-l4", "maximumCardsPerInstance": 8},
                ]
            },
            "zones/europe-west6-a": {"acceleratorTypes": [{"name": "nvidia-tesla-t4", "maximumCardsPerInstance": 4}]},
        }
    },
}


class _FakeCompute(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.requests.append(path)
        body = ANSWERS.get(path)
        payload = json.dumps(body if body is not None else {"error": {"code": 404, "message": path}}).encode()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:  # quiet test output
        pass


@pytest.fixture
def fake_compute() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeCompute)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_fetch_from_the_compute_api(fake_compute: str) -> None:
    _FakeCompute.requests.clear()
    fresh = gcp.fetch(PROJECT, "2026-03-04", {"api_endpoint": fake_compute}, AnonymousCredentials())
    assert sorted(set(_FakeCompute.requests)) == sorted(ANSWERS)
    assert (fresh.date, fresh.source) == ("2026-03-04", gcp.SOURCE_API)
    assert fresh.zones == {"europe-west6": ("europe-west6-a",), "us-central1": ("us-central1-a", "us-central1-b")}
    assert fresh.names() == ["c4a-standard-4", "g2-standard-24", "n1-standard-8"]  # no deprecated, no DOWN region
    g2 = fresh.machine("g2-standard-24")
    assert (g2.vcpus, g2.memory_mib, g2.gpus, g2.gpu_model, g2.spot) == (24, 98304, 2, "nvidia-l4", True)
    assert fresh.machine("c4a-standard-4").arch == "arm64"
    assert fresh.machine("n1-standard-8").regions == {"us-central1"}
    assert sorted(fresh.accelerators) == ["nvidia-t4", "nvidia-v100"]  # L4 is built into g2, not attached
    assert fresh.accelerators["nvidia-v100"].counts == (1, 2, 4, 8)
    assert fresh.accelerators["nvidia-t4"].regions == {"us-central1", "europe-west6"}
    again = catalog.decode(catalog.encode(fresh, gcp.ABOUT))
    assert again.machines() == fresh.machines() and again.accelerators == fresh.accelerators

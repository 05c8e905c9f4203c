"""`Cluster(sync=True)` on gcp machines, end to end, on the simulated GCP (the session's
`gcp_platform`: the hub booted from its startup script by the GCE simulator, the rendered
stack made in the fakes, Cloud Storage in gcp-storage-emulator; tests/support/gcp_platform.py).

alice's laptop (tests/support/sync_laptop.py: the SDK's requirements and `syncextra`, a small
pure-Python package in none of the platform's environments) starts
`Cluster(sync=True, profile="small", n_workers=1)`. The gateway on the hub VM, which reaches
no package index, builds her environment from her wheel and the hub's wheelhouse, publishes
it to `environments/<key>/` of the artifacts bucket in Cloud Storage, and the cluster's
instances install it from there at boot like a locked one (their startup script names the
key): a task on the worker imports `syncextra` from that environment. The instances are
labelled as for any cluster, and closing it deletes them and its secret.
"""

from __future__ import annotations

import base64
from functools import partial
from pathlib import Path

import pytest

from deploy.cloud.deadman import MACHINE_USER_DATA
from render.gateway_config import gateway_spec
from render.validate import validate_text
from tests.support.bootstrap import NAME
from tests.support.cloud_e2e import eventually, gcp_diagnosis, gcp_instances
from tests.support.gcp_platform import GcpPlatform
from tests.support.laptop import on_laptop
from tests.support.sync_laptop import alice_syncs, assert_synced, stop_left_behind, sync_laptop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def laptop(tmp_path_factory) -> Path:
    return sync_laptop(tmp_path_factory.getbasetemp(), "gcp-sync")


def _published(platform: GcpPlatform, key: str) -> list[str]:
    """The objects under environments/<key>/ of the artifacts bucket, by file name."""
    blobs = platform.gcs.client().list_blobs(platform.outputs()["artifacts_bucket"], prefix=f"environments/{key}/")
    return sorted(blob.name.rsplit("/", 1)[1] for blob in blobs)


def _machine_script(instance: dict) -> str:
    """The machine's own startup script, inside the dead-man switch's wrapper."""
    whole = {item["key"]: item["value"] for item in instance["metadata"]["items"]}["startup-script"]
    (carried,) = [line.split()[1] for line in whole.splitlines() if line.endswith(f"base64 -d > {MACHINE_USER_DATA}")]
    return base64.b64decode(carried).decode()


def test_alice_syncs_her_laptops_package_onto_the_clusters_instances(gcp_platform: GcpPlatform, laptop, tmp_path):
    platform = gcp_platform
    budget = gateway_spec(validate_text(platform.text), "gcp").users["alice"].budget
    run = alice_syncs(platform, laptop, tmp_path)
    name = run.name
    try:
        # the worker ran in the synced environment its instance installed from Cloud Storage
        key = assert_synced(run, partial(_published, platform), lambda: gcp_diagnosis(platform, name))

        instances = gcp_instances(platform, name)
        assert sorted(i["labels"]["role"] for i in instances) == ["scheduler", "worker"], gcp_diagnosis(platform, name)
        for instance in instances:
            labels = instance["labels"]
            assert (labels["user"], labels["cluster"], labels["budget"], labels["platform"]) == (
                "alice", name, budget, NAME)
            script = _machine_script(instance)
            assert f"ENVIRONMENT={key}\n" in script and "PLATFORM_SOFTWARE=0" in script

        secret_id = f"graticule-{NAME}-machines-cluster-{name}"
        assert secret_id in platform.secret_manager.secrets
        on_laptop(laptop, run.config, "stop", name)
        eventually(lambda: not gcp_instances(platform, name), 300,
                   lambda: f"instances of {name} left running\n" + gcp_diagnosis(platform, name))
        eventually(lambda: secret_id not in platform.secret_manager.secrets, 120,  # deleted after the instances
                   lambda: f"the secret {secret_id} outlived its cluster")
        run.name = None  # stopped: nothing left behind
    finally:
        stop_left_behind(laptop, run, lambda: gcp_instances(platform, name))

"""The machine simulator on Compute Engine: instances inserted through the fake Compute API
(with google-cloud-compute) boot from their startup scripts, talk to each other on their
networkIPs, read their metadata server, reach Cloud Storage (gcp-storage-emulator) and
Secret Manager (the fake) through the API forwarder, power themselves off into TERMINATED,
and a labelled disk's data outlives the instance it was attached to.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager_v1

from tests.support.gcp.compute_standin import running_fake_compute
from tests.support.gcp.secret_manager import running_secret_manager
from tests.support.gcp.storage import running_gcs
from tests.support.procs import alive
from tests.support.simulator import simulator_unavailable
from tests.support.simulator.gce_probes import (
    ZONE,
    clients,
    delete_instance,
    insert_instance,
    make_disk,
    make_subnetwork,
)
from tests.support.simulator.gce_simulator import GceSimulator
from tests.support.simulator.probes import connect, wait_listening

pytestmark = [pytest.mark.slow, pytest.mark.skipif(simulator_unavailable() is not None,
                                                   reason=simulator_unavailable() or "")]

PROJECT = "oceanlab-prod"
ACCOUNT = f"hub@{PROJECT}.iam.gserviceaccount.com"
SERVE = """#!/bin/sh
echo "startup script ran as $(id -un) on $(hostname)"
cd /tmp && nohup python3 -m http.server 8000 >/var/log/http.log 2>&1 &
"""
METADATA = "http://metadata.google.internal/computeMetadata/v1"


@pytest.fixture
def cloud(tmp_path):
    with running_fake_compute(PROJECT) as compute, running_gcs(PROJECT) as gcs, \
            running_secret_manager(PROJECT) as secrets, \
            GceSimulator(compute, tmp_path / "sim", storage=gcs.url, secretmanager=secrets.url) as sim:
        yield {"compute": compute, "gcs": gcs, "secrets": secrets, "sim": sim,
               "subnetwork": make_subnetwork(compute, PROJECT)}


def _until(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := check()):
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def _curl(box, *args: str) -> subprocess.CompletedProcess:
    return box.exec(["curl", "-s", "--max-time", "20", *args])


def test_instances_boot_from_their_startup_scripts_and_reach_each_other(cloud, tmp_path):
    compute, sim = cloud["compute"], cloud["sim"]
    insert_instance(compute, PROJECT, "web-1", cloud["subnetwork"], SERVE)
    insert_instance(compute, PROJECT, "client-1", cloud["subnetwork"], "#!/bin/sh\necho idle\n")
    web, client = sim.wait_running("web-1"), sim.wait_running("client-1")
    api = clients(compute)["instances"]
    assert web.ip == api.get(project=PROJECT, zone=ZONE, instance="web-1").network_interfaces[0].network_i_p
    assert web.ip != client.ip and web.cidr == "10.20.0.0/20" and web.gateway == "10.20.0.1"
    wait_listening(web, 8000)
    assert "startup script ran as root on web-1" in web.console_log.read_text()
    # the other instance reaches it on its networkIP, across the simulated subnet
    assert connect(client, web.ip, 8000) == "open"
    assert "Directory listing" in _curl(client, f"http://{web.ip}:8000/").stdout

    pids = web.pids()
    delete_instance(compute, PROJECT, "web-1")
    sim.wait_stopped("web-1")
    assert [pid for pid in pids if alive(pid)] == [] and web.ns not in _namespaces()
    assert connect(client, web.ip, 8000, timeout=1) in ("unreachable", "timeout", "refused")


def test_the_metadata_server_answers_with_the_header_only(cloud):
    compute, sim = cloud["compute"], cloud["sim"]
    insert_instance(compute, PROJECT, "meta-1", cloud["subnetwork"], SERVE, account=ACCOUNT,
                    metadata={"graticule-role": "hub"})
    box = sim.wait_running("meta-1")
    flavor = ("-H", "Metadata-Flavor: Google")
    raw = clients(compute)["instances"].get(project=PROJECT, zone=ZONE, instance="meta-1")
    assert _curl(box, *flavor, f"{METADATA}/instance/id").stdout == str(raw.id)
    assert _curl(box, *flavor, f"{METADATA}/instance/name").stdout == "meta-1"
    assert _curl(box, *flavor, f"{METADATA}/instance/zone").stdout.endswith(f"/zones/{ZONE}")
    assert _curl(box, *flavor, f"{METADATA}/instance/network-interfaces/0/ip").stdout == box.ip
    assert _curl(box, *flavor, f"{METADATA}/instance/attributes/startup-script").stdout == SERVE
    assert _curl(box, *flavor, f"{METADATA}/instance/attributes/graticule-role").stdout == "hub"
    assert _curl(box, *flavor, f"{METADATA}/project/project-id").stdout == PROJECT
    token = json.loads(_curl(box, *flavor, f"{METADATA}/instance/service-accounts/default/token").stdout)
    assert token["token_type"] == "Bearer" and token["access_token"] and token["expires_in"] > 0
    account = json.loads(_curl(box, *flavor, f"{METADATA}/instance/service-accounts/default/?recursive=true").stdout)
    assert account["email"] == ACCOUNT and account["aliases"] == ["default"]
    # the same address by IP, and the refusals: no header, a wrong one, or a proxied request
    assert _curl(box, *flavor, "http://169.254.169.254/computeMetadata/v1/instance/name").stdout == "meta-1"
    for refused in ([], ["-H", "Metadata-Flavor: google-ish"], [*flavor, "-H", "X-Forwarded-For: 10.0.0.9"]):
        status = _curl(box, "-o", "/dev/null", "-w", "%{http_code}", *refused, f"{METADATA}/instance/name").stdout
        assert status == "403", refused
    # another instance's metadata server is not this one's
    insert_instance(compute, PROJECT, "meta-2", cloud["subnetwork"], SERVE)
    other = sim.wait_running("meta-2")
    assert _curl(other, *flavor, f"{METADATA}/instance/name").stdout == "meta-2"


def test_instances_reach_storage_and_secret_manager_through_the_forwarder(cloud):
    compute, sim, gcs, secrets = cloud["compute"], cloud["sim"], cloud["gcs"], cloud["secrets"]
    bucket = gcs.client().create_bucket("oceanlab-prod-artifacts")
    bucket.blob("wheelhouse/index.json").upload_from_string(b'{"id": "abc"}')
    manager = secretmanager_v1.SecretManagerServiceClient(credentials=AnonymousCredentials(), transport="rest",
                                                          client_options={"api_endpoint": secrets.url})
    secret = manager.create_secret(parent=f"projects/{PROJECT}", secret_id="hub-cookie-secret",
                                   secret={"replication": {"automatic": {}}})
    manager.add_secret_version(parent=secret.name, payload={"data": b"s3cr3t-value"})

    insert_instance(compute, PROJECT, "hub-1", cloud["subnetwork"], SERVE, account=ACCOUNT)
    box = sim.wait_running("hub-1")
    endpoints = json.loads(box.exec(["cat", "/etc/graticule/google-endpoints.json"]).stdout)
    assert set(endpoints) == {"compute", "storage", "secretmanager"}
    assert all(url.startswith(f"http://{box.gateway}:") for url in endpoints.values())
    token = json.loads(_curl(box, "-H", "Metadata-Flavor: Google",
                             f"{METADATA}/instance/service-accounts/default/token").stdout)["access_token"]
    bearer = ("-H", f"Authorization: Bearer {token}")

    read = _curl(box, *bearer, f"{endpoints['storage']}/storage/v1/b/oceanlab-prod-artifacts/o/"
                               "wheelhouse%2Findex.json?alt=media")
    assert read.stdout == '{"id": "abc"}'
    wrote = _curl(box, *bearer, "-X", "POST", "--data-binary", "from the hub", "-H", "Content-Type: text/plain",
                  f"{endpoints['storage']}/upload/storage/v1/b/oceanlab-prod-artifacts/o?uploadType=media&name=hub.txt")
    assert json.loads(wrote.stdout)["name"] == "hub.txt"
    assert bucket.blob("hub.txt").download_as_bytes() == b"from the hub"

    accessed = _curl(box, *bearer, f"{endpoints['secretmanager']}/v1/projects/{PROJECT}/secrets/hub-cookie-secret/"
                                   "versions/latest:access")
    payload = json.loads(accessed.stdout)["payload"]
    decoded = box.exec(["python3", "-c", "import base64,sys; print(base64.b64decode(sys.argv[1]).decode())",
                        payload["data"]]).stdout.strip()
    assert decoded == "s3cr3t-value"
    # the Compute API too: the instance lists itself through the fake
    listed = json.loads(_curl(box, *bearer, f"{endpoints['compute']}/compute/v1/projects/{PROJECT}/zones/{ZONE}/"
                                            "instances").stdout)
    assert "hub-1" in [i["name"] for i in listed["items"]]
    assert any(r["path"].endswith(":access") and r["status"] == 200 for r in secrets.requests)


def test_a_guest_poweroff_leaves_the_instance_terminated(cloud):
    compute, sim = cloud["compute"], cloud["sim"]
    insert_instance(compute, PROJECT, "worker-1", cloud["subnetwork"], SERVE)
    box = sim.wait_running("worker-1")
    wait_listening(box, 8000)
    pids = box.pids()
    assert "power-off" in box.exec(["poweroff"]).stdout
    sim.wait_stopped("worker-1")
    assert box.instance_id in sim.powered_off
    assert [pid for pid in pids if alive(pid)] == []
    raw = clients(compute)["instances"].get(project=PROJECT, zone=ZONE, instance="worker-1")
    assert raw.status == "TERMINATED"  # left for the reaper to delete, as on GCE


def test_a_labelled_disk_outlives_the_instance(cloud, tmp_path: Path):
    compute, sim = cloud["compute"], cloud["sim"]
    disk = make_disk(compute, PROJECT, "hub-state", "/var/lib/graticule")
    insert_instance(compute, PROJECT, "hub-1", cloud["subnetwork"], "#!/bin/sh\necho first\n", disks=[disk])
    first = sim.wait_running("hub-1")
    _until(lambda: first.exec(["mountpoint", "-q", "/var/lib/graticule"]).returncode == 0)
    assert first.exec(["sh", "-c", "echo kept > /var/lib/graticule/hub.sqlite"]).returncode == 0

    delete_instance(compute, PROJECT, "hub-1")  # replaced: same name, a new instance, the same disk
    sim.wait_stopped(first.instance_id)
    insert_instance(compute, PROJECT, "hub-1", cloud["subnetwork"], "#!/bin/sh\necho second\n", disks=[disk])
    second = sim.wait_running("hub-1")
    assert second.instance_id != first.instance_id
    _until(lambda: second.exec(["cat", "/var/lib/graticule/hub.sqlite"]).stdout == "kept\n")
    # an instance without the disk does not see it
    insert_instance(compute, PROJECT, "other-1", cloud["subnetwork"], "#!/bin/sh\necho other\n")
    other = sim.wait_running("other-1")
    assert other.exec(["mountpoint", "-q", "/var/lib/graticule"]).returncode != 0


def test_leaving_the_block_leaves_nothing(tmp_path):
    with running_fake_compute(PROJECT) as compute, GceSimulator(compute, tmp_path / "sim") as sim:
        insert_instance(compute, PROJECT, "web-1", make_subnetwork(compute, PROJECT), SERVE)
        box = sim.wait_running("web-1")
        wait_listening(box, 8000)
        pids = box.pids()
        assert {box.ns, sim.vpc.name} <= _namespaces()
    assert [pid for pid in pids if alive(pid)] == []
    assert not any(name.startswith(sim.prefix) for name in _namespaces())
    assert [line for line in Path("/proc/mounts").read_text().splitlines() if str(tmp_path) in line] == []

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
import urllib.request
from pathlib import Path

import google.auth.transport.requests
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager_v1
from google.oauth2 import id_token

from tests.support.gce.server import running_fake_compute
from tests.support.gcp.compute_disks import create_rendered_disks
from tests.support.gcp.secret_manager import running_secret_manager
from tests.support.gcp.storage import running_gcs
from tests.support.procs import alive
from tests.support.simulator import simulator_unavailable
from tests.support.simulator.gce_probes import (
    IMAGE,
    ZONE,
    delete_instance,
    get_instance,
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
               "subnetwork": make_subnetwork(compute)}


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
    insert_instance(compute, "web-1", cloud["subnetwork"], SERVE)
    insert_instance(compute, "client-1", cloud["subnetwork"], "#!/bin/sh\necho idle\n")
    web, client = sim.wait_running("web-1"), sim.wait_running("client-1")
    assert web.ip == get_instance(compute, "web-1").network_interfaces[0].network_i_p
    assert web.ip != client.ip and web.cidr == "10.20.0.0/20" and web.gateway == "10.20.0.1"
    wait_listening(web, 8000)
    assert "startup script ran as root on web-1" in web.console_log.read_text()
    # the other instance reaches it on its networkIP, across the simulated subnet
    assert connect(client, web.ip, 8000) == "open"
    assert "Directory listing" in _curl(client, f"http://{web.ip}:8000/").stdout

    pids = web.pids()
    delete_instance(compute, "web-1")
    sim.wait_stopped("web-1")
    assert [pid for pid in pids if alive(pid)] == [] and web.ns not in _namespaces()
    assert connect(client, web.ip, 8000, timeout=1) in ("unreachable", "timeout", "refused")


def test_the_metadata_server_answers_with_the_header_only(cloud):
    compute, sim = cloud["compute"], cloud["sim"]
    insert_instance(compute, "meta-1", cloud["subnetwork"], SERVE, account=ACCOUNT,
                    metadata={"graticule-role": "hub"})
    box = sim.wait_running("meta-1")
    flavor = ("-H", "Metadata-Flavor: Google")
    raw = get_instance(compute, "meta-1")
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
    # an identity token, verified by google-auth against the certificates the instance reaches too
    identity = _curl(box, *flavor, f"{METADATA}/instance/service-accounts/default/identity?audience=aud-1"
                                   "&format=full").stdout
    claims = id_token.verify_token(identity, google.auth.transport.requests.Request(), audience="aud-1",
                                   certs_url=sim.identity.certs_url)
    assert claims["email"] == ACCOUNT and claims["google"]["compute_engine"]["instance_name"] == "meta-1"
    assert claims["google"]["compute_engine"]["instance_id"] == str(raw.id)
    certs = json.loads(box.exec(["cat", "/etc/graticule/google-endpoints.json"]).stdout)["certs"]
    assert json.loads(_curl(box, certs).stdout) == sim.identity.certs()
    # the same address by IP, and the refusals: no header, a wrong one, or a proxied request
    assert _curl(box, *flavor, "http://169.254.169.254/computeMetadata/v1/instance/name").stdout == "meta-1"
    for refused in ([], ["-H", "Metadata-Flavor: google-ish"], [*flavor, "-H", "X-Forwarded-For: 10.0.0.9"]):
        status = _curl(box, "-o", "/dev/null", "-w", "%{http_code}", *refused, f"{METADATA}/instance/name").stdout
        assert status == "403", refused
    # another instance's metadata server is not this one's
    insert_instance(compute, "meta-2", cloud["subnetwork"], SERVE)
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

    insert_instance(compute, "hub-1", cloud["subnetwork"], SERVE, account=ACCOUNT)
    box = sim.wait_running("hub-1")
    endpoints = json.loads(box.exec(["cat", "/etc/graticule/google-endpoints.json"]).stdout)
    assert set(endpoints) == {"compute", "storage", "secretmanager", "certs"}
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
    insert_instance(compute, "worker-1", cloud["subnetwork"], SERVE)
    box = sim.wait_running("worker-1")
    wait_listening(box, 8000)
    pids = box.pids()
    assert "power-off" in box.exec(["poweroff"]).stdout
    sim.wait_stopped("worker-1")
    assert box.instance_id in sim.powered_off
    assert [pid for pid in pids if alive(pid)] == []
    raw = get_instance(compute, "worker-1")
    assert raw.status == "TERMINATED"  # left for the reaper to delete, as on GCE


def test_a_labelled_disk_outlives_the_instance(cloud, tmp_path: Path):
    compute, sim = cloud["compute"], cloud["sim"]
    disk = make_disk(compute, "hub-state", "/var/lib/graticule")
    insert_instance(compute, "hub-1", cloud["subnetwork"], "#!/bin/sh\necho first\n", disks=[disk])
    first = sim.wait_running("hub-1")
    _until(lambda: first.exec(["mountpoint", "-q", "/var/lib/graticule"]).returncode == 0)
    assert first.exec(["sh", "-c", "echo kept > /var/lib/graticule/hub.sqlite"]).returncode == 0

    delete_instance(compute, "hub-1")  # replaced: same name, a new instance, the same disk
    sim.wait_stopped(first.instance_id)
    insert_instance(compute, "hub-1", cloud["subnetwork"], "#!/bin/sh\necho second\n", disks=[disk])
    second = sim.wait_running("hub-1")
    assert second.instance_id != first.instance_id
    _until(lambda: second.exec(["cat", "/var/lib/graticule/hub.sqlite"]).stdout == "kept\n")
    # an instance without the disk does not see it
    insert_instance(compute, "other-1", cloud["subnetwork"], "#!/bin/sh\necho other\n")
    other = sim.wait_running("other-1")
    assert other.exec(["mountpoint", "-q", "/var/lib/graticule"]).returncode != 0


def test_leaving_the_block_leaves_nothing(tmp_path):
    with running_fake_compute(PROJECT) as compute, GceSimulator(compute, tmp_path / "sim") as sim:
        insert_instance(compute, "web-1", make_subnetwork(compute), SERVE)
        box = sim.wait_running("web-1")
        wait_listening(box, 8000)
        pids = box.pids()
        assert {box.ns, sim.vpc.name} <= _namespaces()
    assert [pid for pid in pids if alive(pid)] == []
    assert not any(name.startswith(sim.prefix) for name in _namespaces())
    assert [line for line in Path("/proc/mounts").read_text().splitlines() if str(tmp_path) in line] == []


def test_an_instance_launches_another_through_the_forwarded_compute_api(cloud):
    """What the gateway on the hub VM does: instances.insert from inside, with the token from
    the metadata server, to the endpoint the endpoints file names; the simulator boots it."""
    compute, sim = cloud["compute"], cloud["sim"]
    insert_instance(compute, "hub-1", cloud["subnetwork"], SERVE, account=ACCOUNT)
    hub = sim.wait_running("hub-1")
    endpoint = json.loads(hub.exec(["cat", "/etc/graticule/google-endpoints.json"]).stdout)["compute"]
    token = json.loads(_curl(hub, "-H", "Metadata-Flavor: Google",
                             f"{METADATA}/instance/service-accounts/default/token").stdout)["access_token"]
    body = {"name": "worker-7", "machineType": f"zones/{ZONE}/machineTypes/e2-small",
            "disks": [{"boot": True, "autoDelete": True, "initializeParams": {"sourceImage": IMAGE}}],
            "networkInterfaces": [{"subnetwork": cloud["subnetwork"]}],
            "metadata": {"items": [{"key": "startup-script", "value": SERVE}]}}
    inserted = _curl(hub, "-X", "POST", "-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/json",
                     "--data-binary", json.dumps(body),
                     f"{endpoint}/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances")
    assert json.loads(inserted.stdout)["kind"] == "compute#operation", inserted.stdout
    worker = sim.wait_running("worker-7")
    wait_listening(worker, 8000)
    assert connect(hub, worker.ip, 8000) == "open"
    # a body the discovery document does not allow is refused there too, and nothing boots
    body["name"], body["gpu"] = "worker-8", "many"
    refused = _curl(hub, "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", json.dumps(body),
                    "-w", "\n%{http_code}", f"{endpoint}/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances")
    assert refused.stdout.rsplit("\n", 1)[1] == "400"
    assert "worker-8" not in [i["name"] for i in compute.instances()]


def test_a_rendered_state_disk_is_mounted_where_its_label_says(cloud):
    """The hub's state disk as modules/gcp renders it (a google_compute_disk labelled
    mount-point=_var_lib_graticule, attached to the hub by source), created as Terraform would."""
    compute, sim = cloud["compute"], cloud["sim"]
    stack = {"resource": {"google_compute_disk": {"hub_state": {
        "name": "oceanlab-hub-state", "zone": ZONE, "type": "pd-balanced", "size": 20,
        "labels": {"role": "hub-state", "mount-point": "_var_lib_graticule"}}}}}
    disks = create_rendered_disks(compute, stack)
    insert_instance(compute, "oceanlab-hub", cloud["subnetwork"], "#!/bin/sh\necho hub\n",
                    disks=(disks["oceanlab-hub-state"],))
    box = sim.wait_running("oceanlab-hub")
    _until(lambda: box.exec(["mountpoint", "-q", "/var/lib/graticule"]).returncode == 0)
    box.exec(["sh", "-c", "echo state > /var/lib/graticule/ledger"])
    assert (sim.workdir / "disks" / f"{ZONE}-oceanlab-hub-state" / "ledger").read_text() == "state\n"


def test_the_rendered_load_balancer_reaches_the_hub_and_its_replacement(cloud):
    """The rendered stack's front door (forwarding rule 443 -> proxy -> URL map -> backend
    service -> the hub's instance group, named port `hub`), as gcphub's e2e reaches the hub."""
    from render.terraform_gcp import synthesize_gcp
    from tests.support.terraform import example_platform

    compute, sim = cloud["compute"], cloud["sim"]
    stack = json.loads(synthesize_gcp(example_platform("gcp")))
    hub = stack["resource"]["google_compute_instance"]["hub"]["name"]
    port = stack["resource"]["google_compute_instance_group"]["hub"]["named_port"][0]["port"]
    serve = f"#!/bin/sh\nmkdir -p /srv && echo $(hostname) > /srv/who && cd /srv && " \
            f"nohup python3 -m http.server {port} >/var/log/http.log 2>&1 &\n"
    door = sim.front_door(stack)
    url = door.url(443)
    with pytest.raises(OSError):  # no hub yet: the connection is closed without an answer
        urllib.request.urlopen(f"{url}/who", timeout=10).read()
    insert_instance(compute, hub, cloud["subnetwork"], serve)
    box = sim.wait_running(hub)
    wait_listening(box, port)
    assert urllib.request.urlopen(f"{url}/who", timeout=10).read() == f"{hub}\n".encode()
    delete_instance(compute, hub)
    sim.wait_stopped(box.instance_id)
    insert_instance(compute, hub, cloud["subnetwork"], serve.replace("$(hostname)", "replaced"))
    wait_listening(sim.wait_running(hub), port)
    assert urllib.request.urlopen(f"{url}/who", timeout=10).read() == b"replaced\n"


def test_polling_rides_out_the_fakes_injected_failures(cloud):
    """A 503, a 429 and a lost answer to the simulator's own aggregatedList are retried, not fatal."""
    compute, sim = cloud["compute"], cloud["sim"]
    compute.fail_next("compute.instances.aggregatedList", status=503)
    compute.fail_next("compute.instances.aggregatedList", status=429)
    compute.fail_next("compute.instances.aggregatedList", lost=True)
    insert_instance(compute, "web-1", cloud["subnetwork"], SERVE)
    wait_listening(sim.wait_running("web-1"), 8000)
    assert compute._faults == []  # all three were met by the simulator's polls
    assert sim.errors == [] and len(compute.calls("compute.instances.aggregatedList")) >= 4

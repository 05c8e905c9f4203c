"""Notebook servers on their own Compute Engine instances, end to end, on the simulated GCP
(the session's `gcp_platform`: the hub booted from its startup script by the GCE simulator,
the rendered stack made in the fake Compute API, Cloud Storage in gcp-storage-emulator,
Secret Manager's fake; tests/support/gcp_platform.py). Terraform's google provider is not
mirrored here, so the harness creates what the rendered stack would.

Through the rendered load balancer only, alice starts her notebook server:

- it runs on an instance of its own, launched by the hub's VM spawner from the `small`
  instance template, labelled role=notebook, alice, her budget, with the notebooks' network
  tag; the simulator boots it from a startup script holding no token (the hub's broker hands
  the machine its secret, for its instance identity token); nothing of it runs on the hub;
- a file she writes through the server's contents API lands on her home disk, survives a
  stop (the instance deleted, the secret deleted, the disk kept) and is there on the next
  server's new instance (the same disk, attached at creation);
- bob cannot reach it: not through the hub with his token, not over the network from his
  own server's instance (the rendered firewall lets only the hub's proxy in);
- the idle culler (jupyterhub-idle-culler itself, with the platform's admin token) stops
  the idle server, and that deletes its instance.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.cloud.gcp import GCPMachines
from deploy.cloud.gcp_home_disks import GCPHomeDisks, home_disk_name
from deploy.cloud.home_volumes import HomeVolume
from modules import naming
from tests.support.bootstrap import NAME
from tests.support.cloud_e2e import eventually
from tests.support.gcp_hub import PROJECT
from tests.support.gcp_platform import GcpPlatform, _secret_client
from tests.support.hub_e2e import Session
from tests.support.procs import kill_tree

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

WAIT = 900  # seconds for a machine to boot, install and answer on a shared machine
NOTE = "written on alice's first server\n"
BOB_PASSWORD = "bob-Secret-1"


def _published_version(platform: GcpPlatform) -> str:
    bucket = platform.outputs()["artifacts_bucket"]
    blob = platform.gcs.client().bucket(bucket).blob("config/current.json")
    return json.loads(blob.download_as_bytes())["version"][:12]


def _config_settled(platform: GcpPlatform) -> bool:
    """The hub runs the configuration last published (a re-apply makes config sync restart
    the hub some seconds later: a start request must not meet that restart)."""
    version = _published_version(platform)
    for box in platform.sim.booted(platform.hub_instance()):
        sync_log = box.root / "var/log/graticule/config-sync.log"
        logs = box.console_log.read_text(errors="replace") + (sync_log.read_text() if sync_log.exists() else "")
        if f"configuration {version} installed" in logs or f"configuration {version} applied" in logs:
            return True
    return False


def _notebooks(platform: GcpPlatform, user: str) -> list[dict]:
    return [i for i in platform.compute.instances()
            if i.get("labels", {}).get("role") == "notebook" and i["labels"].get("user") == user]


def _start(platform: GcpPlatform, session: Session) -> dict:
    try:
        session.start_server("small", timeout=WAIT)
    except AssertionError:
        found = _notebooks(platform, session.user)
        print(platform.diagnose(found[0]["name"]) if found else f"no notebook instance of {session.user}")
        print(platform.diagnose(platform.hub_instance()))
        raise
    (instance,) = _notebooks(platform, session.user)
    return instance


def _secret_ids(platform: GcpPlatform) -> list[str]:
    return sorted(platform.secret_manager.secrets)


def _stopped(platform: GcpPlatform, session: Session, name: str) -> None:
    eventually(lambda: not session.api("GET", f"/users/{session.user}").json().get("servers"), 300,
               lambda: f"{session.user}'s server did not stop")
    platform.sim.wait_stopped(name, timeout=300)
    assert name not in [i["name"] for i in platform.compute.instances()]  # deleted, not just stopped
    assert naming.gcp_machine_secret_id(NAME, f"server-{session.user}") not in _secret_ids(platform)


def _contents(platform: GcpPlatform, token: str, path: str, method: str = "GET", body: dict | None = None,
              user: str = "alice"):
    return requests.request(method, f"{platform.front}/user/{user}/api/contents/{path}", json=body, timeout=60,
                            headers={"Authorization": f"token {token}"})


def _home_disk(platform: GcpPlatform, user: str) -> HomeVolume | None:
    machines = GCPMachines(PROJECT, client_options=platform.compute.client_options(),
                           credentials=AnonymousCredentials())
    return GCPHomeDisks(machines, NAME).find(user)


def _admin_token(platform: GcpPlatform) -> str:
    client: secretmanager.SecretManagerServiceClient = _secret_client(platform.secret_manager)
    name = f"projects/{PROJECT}/secrets/{naming.gcp_secret_id(NAME, 'admin-api-token')}/versions/latest"
    return client.access_secret_version(name=name).payload.data.decode().strip()


def test_alice_server_runs_on_its_own_instance_keeps_her_home_is_hers_alone_and_is_culled(gcp_platform):
    platform, sim = gcp_platform, gcp_platform.sim
    hub = platform.hub_instance()
    if not platform.outputs().get("hub_private_ip"):
        # The harness's first apply ran before the hub instance (and its address) existed;
        # `platform apply` after Terraform always has it. Published again, as a re-apply does.
        platform.apply()
    eventually(lambda: _config_settled(platform), 600, lambda: platform.diagnose(hub))
    platform.wait_healthy()
    alice = Session(platform.front, "alice")
    assert alice.login().status_code == 302

    # her server: an instance of its own, from the small template, labelled; no token in its startup script
    first = _start(platform, alice)
    assert first["name"] != hub and first["name"].startswith(f"{NAME}-nb-alice-")
    labels = first["labels"]
    assert [labels[key] for key in ("platform", "role", "user", "server")] == [NAME, "notebook", "alice", "alice"]
    assert labels["budget"] and labels["profile"] == "small"
    small = json.loads((platform.root / "build" / "workers" / "small.json").read_text())
    assert first["machineType"].endswith(f"/machineTypes/{small['machine_type']}")
    assert first["tags"]["items"] == [naming.notebook_tag(NAME)]
    token = alice.new_token()
    script = {item["key"]: item["value"] for item in first["metadata"]["items"]}["startup-script"]
    assert token not in script
    (box,) = sim.booted(first["name"])
    assert "jupyterhub.singleuser" in box.exec(["ps", "-eo", "args"]).stdout
    (hub_box,) = sim.booted(hub)
    assert "jupyterhub.singleuser" not in hub_box.exec(["ps", "-eo", "args"]).stdout  # not on the hub

    # a file in her home survives a stop and a start
    written = _contents(platform, token, "notes.txt", "PUT", {"type": "file", "format": "text", "content": NOTE})
    assert written.status_code in (200, 201), written.text
    disk = _home_disk(platform, "alice")
    assert disk.id == home_disk_name(NAME, "alice") and disk.attached_to == first["name"]
    assert (sim.workdir / "disks" / f"{disk.zone}-{disk.id}" / "notes.txt").read_text() == NOTE  # on the disk
    assert [d["source"].rsplit("/", 1)[-1] for d in first["disks"] if not d["boot"]] == [disk.id]

    # bob cannot reach it: not through the hub, not from his own server's instance
    bob = Session(platform.front, "bob")
    assert bob.login(BOB_PASSWORD).status_code == 302  # his first login sets it
    bob_token = bob.new_token()
    assert _contents(platform, bob_token, "notes.txt").status_code in (403, 404)
    bobs = _start(platform, bob)
    (bob_box,) = sim.booted(bobs["name"])
    alice_ip = first["networkInterfaces"][0]["networkIP"]
    probe = ["curl", "-sS", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}", f"http://{alice_ip}:8888/"]
    assert bob_box.exec(probe, timeout=30).returncode != 0  # dropped by the firewall
    assert hub_box.exec(probe, timeout=30).stdout.strip() not in ("", "000")  # the hub's proxy does reach it
    assert bob.api("DELETE", "/users/bob/server").status_code in (202, 204)
    _stopped(platform, bob, bobs["name"])

    assert alice.api("DELETE", "/users/alice/server").status_code in (202, 204)
    _stopped(platform, alice, first["name"])
    assert _home_disk(platform, "alice") == HomeVolume(disk.id, disk.zone, "available")  # kept, let go of

    second = _start(platform, alice)
    assert second["name"] != first["name"] and second["zone"].endswith(f"/zones/{disk.zone}")
    assert [d["source"].rsplit("/", 1)[-1] for d in second["disks"] if not d["boot"]] == [disk.id]
    read = _contents(platform, token, "notes.txt")
    assert read.status_code == 200 and read.json()["content"] == NOTE

    # the idle culler: the real one, idle after 1 s, with the platform's admin token
    culler = subprocess.Popen([sys.executable, "-m", "jupyterhub_idle_culler", f"--url={platform.front}/hub/api",
                               "--timeout=1", "--cull-every=5"],
                              env={"PATH": "/usr/bin:/bin", "JUPYTERHUB_API_TOKEN": _admin_token(platform)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _stopped(platform, alice, second["name"])
    finally:
        kill_tree(culler.pid)
        output = culler.communicate(timeout=30)[0]
    assert "Culling server alice" in output or "culling" in output.lower(), output
    assert _notebooks(platform, "alice") == [] and _notebooks(platform, "bob") == []

"""Notebook servers on their own EC2 instances, end to end, on the simulated cloud (the
session's `aws_platform`: the hub booted from its user data by the machine simulator,
Terraform's real AWS provider against moto; tests/support/aws_platform.py).

Through the load balancer's 443 listener only, alice starts her notebook server:

- it runs on an instance of its own (launched by the hub's VM spawner from the `small`
  launch template, tagged role=notebook, alice, her budget), never on the hub's instance;
  the instance booted from user data holding no token (its secret holds it);
- a file she writes through the server's contents API lands on her home volume, survives
  a stop (the instance terminated, the secret deleted) and is there on the next server's
  new instance (the same volume, attached again);
- the idle culler (jupyterhub-idle-culler itself, with a short timeout and the platform's
  admin token) stops the idle server, and that terminates its instance.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import requests

from tests.support.aws_platform import AwsPlatform
from tests.support.bootstrap import NAME
from tests.support.hub_e2e import Session
from tests.support.procs import kill_tree

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

WAIT = 900  # seconds for a machine to boot, install and answer on a shared machine
NOTE = "written on alice's first server\n"


def _eventually(check: Callable[[], object], timeout: float, message: Callable[[], str]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(2)
    raise AssertionError(message())


def _config_settled(platform: AwsPlatform) -> bool:
    """The hub runs the configuration last applied: an earlier module's re-apply makes config
    sync restart the hub some seconds later, and a start request must not meet that restart."""
    bucket = platform.outputs()["artifacts_bucket"]
    current = platform.server.client("s3").get_object(Bucket=bucket, Key="config/current.json")
    version = json.loads(current["Body"].read())["version"][:12]
    box = platform.sim.sandboxes[platform.hub_instance()]
    sync_log = box.root / "var/log/graticule/config-sync.log"
    logs = box.console_log.read_text(errors="replace") + (sync_log.read_text() if sync_log.exists() else "")
    return f"configuration {version} installed" in logs or f"configuration {version} applied" in logs


def _notebook_instances(platform: AwsPlatform, user: str) -> list[dict]:
    ec2 = platform.server.client("ec2")
    answer = ec2.describe_instances(Filters=[{"Name": "tag:role", "Values": ["notebook"]},
                                             {"Name": "tag:user", "Values": [user]},
                                             {"Name": "instance-state-name", "Values": ["pending", "running"]}])
    return [i for r in answer["Reservations"] for i in r["Instances"]]


def _start(platform: AwsPlatform, session: Session) -> dict:
    try:
        session.start_server("small", timeout=WAIT)
    except AssertionError:
        found = _notebook_instances(platform, session.user)
        print(platform.diagnose(found[0]["InstanceId"]) if found else "no notebook instance")
        print(platform.diagnose(platform.hub_instance()))
        raise
    (instance,) = _notebook_instances(platform, session.user)
    return instance


def _stopped(platform: AwsPlatform, session: Session, instance_id: str) -> None:
    _eventually(lambda: not session.api("GET", f"/users/{session.user}").json().get("servers"), 300,
                lambda: f"{session.user}'s server did not stop")
    platform.sim.wait_stopped(instance_id, timeout=300)
    state = platform.server.client("ec2").describe_instances(InstanceIds=[instance_id])
    assert state["Reservations"][0]["Instances"][0]["State"]["Name"] in ("shutting-down", "terminated")
    secrets = [s["Name"] for s in platform.server.client("secretsmanager").list_secrets()["SecretList"]]
    assert f"graticule/{NAME}/machines/server-{session.user}" not in secrets


def _contents(platform: AwsPlatform, token: str, path: str, method: str = "GET", body: dict | None = None):
    return requests.request(method, f"{platform.front}/user/alice/api/contents/{path}", json=body, timeout=60,
                            headers={"Authorization": f"token {token}"})


def test_alice_server_runs_on_its_own_instance_keeps_her_home_and_is_culled(aws_platform: AwsPlatform):
    platform, sim = aws_platform, aws_platform.sim
    ec2 = platform.server.client("ec2")
    hub = platform.hub_instance()
    _eventually(lambda: _config_settled(platform), 300, lambda: platform.diagnose(hub))
    platform.wait_healthy()
    alice = Session(platform.front, "alice")
    assert alice.login().status_code == 302

    # her server: an instance of its own, from the small template, tagged; no token in its user data
    first = _start(platform, alice)
    assert first["InstanceId"] != hub
    tags = {t["Key"]: t["Value"] for t in first["Tags"]}
    assert (tags["platform"], tags["role"], tags["user"], tags["server"]) == (NAME, "notebook", "alice", "alice")
    assert tags["budget"] and tags["Name"].startswith(f"{NAME}-nb-alice-")
    small = json.loads((platform.root / "build" / "workers" / "small.json").read_text())
    assert first["InstanceType"] == small["instance_type"]
    groups = {g["GroupId"] for g in first["SecurityGroups"]}
    assert groups == {platform.outputs()["security_group_ids"]["notebooks"]}
    token = alice.new_token()
    user_data = ec2.describe_instance_attribute(InstanceId=first["InstanceId"], Attribute="userData")
    assert token not in base64.b64decode(user_data["UserData"]["Value"]).decode()
    box = sim.sandboxes[first["InstanceId"]]
    assert "jupyterhub.singleuser" in box.exec(["ps", "-eo", "args"]).stdout
    assert "jupyterhub.singleuser" not in sim.sandboxes[hub].exec(["ps", "-eo", "args"]).stdout  # not the hub's

    # a file in her home survives a stop and a start
    written = _contents(platform, token, "notes.txt", "PUT", {"type": "file", "format": "text", "content": NOTE})
    assert written.status_code in (200, 201), written.text
    (volume,) = ec2.describe_volumes(Filters=[{"Name": "tag:role", "Values": ["home"]},
                                              {"Name": "tag:user", "Values": ["alice"]}])["Volumes"]
    assert [a["InstanceId"] for a in volume["Attachments"]] == [first["InstanceId"]]
    assert (sim.workdir / "volumes" / volume["VolumeId"] / "notes.txt").read_text() == NOTE  # on the volume
    assert alice.api("DELETE", "/users/alice/server").status_code in (202, 204)
    _stopped(platform, alice, first["InstanceId"])

    second = _start(platform, alice)
    assert second["InstanceId"] != first["InstanceId"]
    assert second["Placement"]["AvailabilityZone"] == volume["AvailabilityZone"]
    read = _contents(platform, token, "notes.txt")
    assert read.status_code == 200 and read.json()["content"] == NOTE

    # the idle culler: the real one, idle after 1 s, with the platform's admin token
    admin = platform.server.client("secretsmanager").get_secret_value(SecretId=f"graticule/{NAME}/admin-api-token")
    culler = subprocess.Popen([sys.executable, "-m", "jupyterhub_idle_culler", f"--url={platform.front}/hub/api",
                               "--timeout=1", "--cull-every=5"],
                              env={"PATH": "/usr/bin:/bin", "JUPYTERHUB_API_TOKEN": admin["SecretString"].strip()},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _stopped(platform, alice, second["InstanceId"])
    finally:
        kill_tree(culler.pid)
        output = culler.communicate(timeout=30)[0]
    assert "Culling server alice" in output or "culling" in output.lower(), output
    assert _notebook_instances(platform, "alice") == []

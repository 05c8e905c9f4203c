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

Then, with the platform's environments locked and published (tiny ones; `ml` also holds a
marker package built here, which neither `default` nor the platform's software has):

- alice's server in `ml` offers that environment's kernel, which starts on her instance and
  imports the marker (the server's default kernel cannot);
- her server's machine is an interval in the hub VM's ledger, paid by her budget;
- with the budget nearly spent, carol's spawn is refused with a message naming it, shown by
  JupyterHub; once spent (`on_exhausted: stop`), the gateway's metering pass has the hub stop
  alice's server (the hub's API: the hub knows it stopped), its instance is terminated and
  its interval closed.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from tests.support.aws_platform import AwsPlatform
from tests.support.bootstrap import NAME
from tests.support.budget_e2e import spawn_answer
from tests.support.cloud_e2e import environments_applied, eventually, tiny_environments
from tests.support.hub_e2e import Session
from tests.support.hub_vm import intervals, ledger
from tests.support.hub_wheelhouse import hub_wheels
from tests.support.kernel import KernelError, run_in_kernel
from tests.support.procs import kill_tree
from tests.support.wheelhouse import tiny_wheel

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

WAIT = 900  # seconds for a machine to boot, install and answer on a shared machine
NOTE = "written on alice's first server\n"
MARKER = "graticule_e2e_marker"  # a package only the `ml` environment has
CAROL_PASSWORD = "carol-Secret-1"


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
    eventually(lambda: not session.api("GET", f"/users/{session.user}").json().get("servers"), 300,
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
    eventually(lambda: _config_settled(platform), 300, lambda: platform.diagnose(hub))
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


@pytest.fixture(scope="module")
def marked(aws_platform: AwsPlatform, tmp_path_factory) -> Iterator[AwsPlatform]:
    """The platform with tiny, locked environments, `ml` with the marker package too (a wheel
    beside the offline wheel source); as it was after."""
    platform = aws_platform
    links = tmp_path_factory.mktemp("wheel-source")
    for wheel in hub_wheels().glob("*.whl"):
        (links / wheel.name).symlink_to(wheel)
    tiny_wheel(links, MARKER, "1.0", body='WHERE = "ml"')
    tiny = tiny_environments(platform.text)
    ml = tiny.index("\n  ml:\n")
    packages = tiny.index("    packages: [", ml)
    text = tiny[:packages] + f'    packages: ["dask[distributed]==2026.8.0", "{MARKER.replace("_", "-")}==1.0"]\n' \
        + tiny[tiny.index("\n", packages) + 1:]
    with environments_applied(platform, text, links, GRATICULE_WHEELHOUSE_FIND_LINKS=str(links)) as applied:
        yield applied


def test_alices_server_offers_her_environments_kernel_and_is_paid_by_her_budget(marked: AwsPlatform):
    platform = marked
    eventually(lambda: _config_settled(platform), 300, lambda: platform.diagnose(platform.hub_instance()))
    platform.wait_healthy()
    alice = Session(platform.front, "alice")
    assert alice.login().status_code == 302
    server = None
    try:
        answer = alice.api("POST", "/users/alice/server", {"profile": "small", "environment": "ml"})
        assert answer.status_code in (201, 202), answer.text
        eventually(lambda: alice.api("GET", "/users/alice").json().get("servers", {}).get("", {}).get("ready"),
                   WAIT, lambda: platform.diagnose(platform.hub_instance()))
        (server,) = _notebook_instances(platform, "alice")
        token = alice.new_token()

        # the environment's kernel, on her instance, with the package only `ml` has
        specs = requests.get(f"{platform.front}/user/alice/api/kernelspecs", timeout=60,
                             headers={"Authorization": f"token {token}"}).json()
        assert "graticule-ml" in specs["kernelspecs"], specs
        code = f"import sys, socket, {MARKER}; print({MARKER}.WHERE, sys.prefix, socket.gethostname())"
        where, prefix, host = run_in_kernel(f"{platform.front}/user/alice", token, code,
                                            kernel_name="graticule-ml").split()
        assert where == "ml" and prefix.startswith("/opt/graticule/envs/")  # the environment's, not the platform's
        assert host == "ip-" + server["PrivateIpAddress"].replace(".", "-")  # her instance's name, not the hub's
        with pytest.raises(KernelError, match=MARKER):
            run_in_kernel(f"{platform.front}/user/alice", token, f"import {MARKER}")  # the default kernel

        # her server's machine is in the ledger, paid by her budget
        (row,) = eventually(lambda: [r for r in intervals(platform, "notebook:alice") if r["ended_at"] is None],
                            120, lambda: "no open interval for alice's server")
        assert row["machine_id"] == server["InstanceId"]

        # a budget that cannot pay refuses carol's server, by name, on JupyterHub's pages
        ledger(platform, "spend-to", "ocean", "500", "0.01")
        carol = Session(platform.front, "carol")
        assert carol.login(CAROL_PASSWORD).status_code == 302
        refused = spawn_answer(carol, {"profile": "small"})
        assert "budget 'ocean' refused this request" in refused, refused
        assert _notebook_instances(platform, "carol") == []

        # spent: the gateway has the hub stop alice's server
        ledger(platform, "spend-to", "ocean", "500", "-0.01")
        _stopped(platform, alice, server["InstanceId"])
        gateway_log = (platform.sim.sandboxes[platform.hub_instance()].root
                       / "var/log/graticule/gateway.log").read_text(errors="replace")
        assert "Stopping notebook server alice: stopped by graticule: budget 'ocean' is exhausted" in gateway_log
        assert all(r["ended_at"] for r in intervals(platform, "notebook:alice"))
        server = None
    finally:
        ledger(platform, "forget", "ocean")
        if server is not None:
            print(platform.diagnose(server["InstanceId"]))
            alice.api("DELETE", "/users/alice/server")
            eventually(lambda: not _notebook_instances(platform, "alice"), 300, lambda: "alice's server left")

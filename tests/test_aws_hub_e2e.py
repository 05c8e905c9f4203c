"""The hub on AWS, end to end, on the simulated cloud (the session's `aws_platform`,
tests/support/aws_platform.py: bootstrap and apply through the real Terraform AWS provider
against moto, the hub instance booted by the machine simulator from its rendered user data,
which installs graticule offline from the published wheelhouse, mounts the state volume
(a directory, see the simulator's README), takes its secrets from Secrets Manager, generating
them on first boot, and starts the components as units). Then, through the simulated load
balancer's 443 listener only:

- the hub is healthy; alice logs in and starts a notebook server (on an instance of its own);
- a new user re-applied in platform.yaml logs in, while alice's server keeps running
  (the same process: config sync restarted the hub only, which keeps its servers), and
  the hub instance is the same one;
- the hub instance replaced (`terraform taint aws_instance.hub`, then `platform apply`)
  comes back with every user, alice's password, her API token and the usage ledger's rows
  (the state volume), at the same private address, so the dead-man switch of alice's
  notebook machine (which asks that address) is answered again; the operator's `platform
  status`, `token` and `logs` reach it through EC2, Secrets Manager, CloudWatch Logs (fed
  by the VM's log shipper) and the load balancer.

`platform destroy` leaving no instance, volume, secret or artifacts bucket in moto is
checked when the session's platform is torn down.
"""

from __future__ import annotations

import json
import shlex

import pytest
import requests

from deploy.cloud.deadman import UNIT as DEADMAN_UNIT
from deploy.terraform import Terraform
from tests.support.aws_platform import AwsPlatform
from tests.support.bootstrap import NAME
from tests.support.cloud_e2e import eventually
from tests.support.hub_e2e import Session, token_user, with_user
from tests.support.simulator import Simulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

RESTARTING = (requests.RequestException,)  # the hub restarting: not answering for a moment


def _server_pid(sim: Simulator, instance_id: str, user: str) -> int:
    box = sim.sandboxes[instance_id]
    found = box.exec(["pgrep", "-f", f"jupyterhub.singleuser.*|JUPYTERHUB_USER={user}"])
    pids = [int(p) for p in found.stdout.split()]
    for pid in pids:
        environ = box.exec(["cat", f"/proc/{pid}/environ"]).stdout
        if f"JUPYTERHUB_USER={user}\0" in environ and "JUPYTERHUB_SERVICE_NAME" not in environ:
            return pid
    raise AssertionError(f"no notebook server process of {user} on {instance_id}: {found.stdout!r}")


def _notebook_instance(platform: AwsPlatform, user: str) -> str:
    """The instance the hub's VM spawner started for `user`'s server (never the hub's own)."""
    answer = platform.server.client("ec2").describe_instances(Filters=[
        {"Name": "tag:role", "Values": ["notebook"]}, {"Name": "tag:user", "Values": [user]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]}])
    (instance,) = [i for r in answer["Reservations"] for i in r["Instances"]]
    return instance["InstanceId"]


def _taint(platform: AwsPlatform, address: str) -> None:
    """`terraform taint` in the CLI's own stack directory and Terraform data (deploy.terraform):
    the next `platform apply` replaces `address`."""
    root = platform.root / ".platform" / NAME / "terraform" / "aws"
    Terraform(root / "stack", state_dir=root, env=platform.env).run("taint", "-no-color", address, timeout=300)


def test_hub_boots_serves_follows_changes_and_survives_replacement(aws_platform: AwsPlatform):
    platform, sim = aws_platform, aws_platform.sim
    front, text = platform.front, platform.text
    hub = platform.hub_instance()

    # alice logs in (her first login sets her password) and starts a notebook server
    alice = Session(front, "alice")
    assert alice.login().status_code == 302
    try:
        alice.start_server("small", timeout=900)  # on an instance of its own: boot, install, attach her home
    except AssertionError:
        print(platform.diagnose(hub))
        raise
    notebook = _notebook_instance(platform, "alice")
    assert notebook != hub
    token = alice.new_token()
    assert token_user(front, token) == "alice"
    started = alice.server_status(token)["started"]
    server_pid = _server_pid(sim, notebook, "alice")
    # nobody else: only platform.yaml's users may log in
    assert Session(front, "mallory").login("whatever-1").status_code != 302

    # a new user, re-applied: dave logs in, alice's server is the same process
    assert Session(front, "dave").login().status_code != 302
    platform.apply(with_user(text, "dave", "ocean"))
    assert platform.hub_instance() == hub  # the VM was not replaced
    dave = Session(front, "dave")
    eventually(lambda: dave.login().status_code == 302, 180, lambda: "dave could not log in after the re-apply",
               RESTARTING)
    assert alice.server_status(token)["started"] == started
    assert _server_pid(sim, notebook, "alice") == server_pid

    # the hub replaced: users, passwords, tokens and usage come back from the state volume
    users = _user_names(alice)
    assert {"alice", "dave"} <= users
    ledger_rows = _ledger_processes(sim, hub, write=True)  # earlier modules' clusters' rows too
    assert LEDGER_PROCESS in ledger_rows
    hub_ip = _private_ip(platform, hub)
    assert platform.outputs()["hub_private_ip"] == hub_ip
    deadman_url = _deadman_url(sim, notebook)
    assert deadman_url.startswith(f"http://{hub_ip}:")  # the notebook machine asks the hub's address
    assert _answers(sim, notebook, deadman_url)
    _taint(platform, "aws_instance.hub")
    platform.apply(settle=False)  # a new hub boots with the configuration: waited for below
    replaced = platform.hub_instance()
    assert replaced != hub
    sim.wait_stopped(hub, timeout=300)
    sim.wait_running(replaced, timeout=300)
    assert _private_ip(platform, replaced) == hub_ip  # the fixed address, taken over
    platform.wait_healthy()
    # the apply published after the new hub booted: its config sync may still restart the gateway
    platform.settle_after_replacement(lambda: sim.sandboxes[replaced].console_log.read_text(errors="replace"))
    eventually(lambda: _answers(sim, notebook, deadman_url), 180,
               lambda: "the notebook machine's dead-man URL was not answered by the replaced hub", RESTARTING)
    again = Session(front, "alice")
    assert again.login().status_code == 302  # her password, not a new first login
    assert Session(front, "alice").login("a-wrong-password").status_code != 302
    assert token_user(front, token) == "alice"
    assert Session(front, "dave").login().status_code == 302
    assert _user_names(again) == users  # the hub database, as it was
    assert _ledger_processes(sim, replaced) == ledger_rows  # the usage ledger, as it was
    _operator_commands(platform, replaced)

    # as it was: without dave, and alice's server stopped
    platform.apply(text)
    assert again.api("DELETE", "/users/alice/server").status_code in (202, 204)


def _private_ip(platform: AwsPlatform, instance_id: str) -> str:
    found = platform.server.client("ec2").describe_instances(InstanceIds=[instance_id])
    return found["Reservations"][0]["Instances"][0]["PrivateIpAddress"]


def _deadman_url(sim: Simulator, instance_id: str) -> str:
    """What the machine's dead-man switch asks (deploy/cloud/deadman.py: its unit's ExecStart)."""
    unit = sim.sandboxes[instance_id].exec(["cat", f"/etc/systemd/system/{DEADMAN_UNIT}"]).stdout
    command = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    return shlex.split(command.removeprefix("ExecStart="))[2]


def _answers(sim: Simulator, instance_id: str, url: str) -> bool:
    """Whether `url` answers below 500 from inside the machine: what the dead-man switch counts as alive."""
    done = sim.sandboxes[instance_id].exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                            "--max-time", "10", url])
    return done.stdout.strip().isdigit() and 0 < int(done.stdout.strip()) < 500


LEDGER_PROCESS = "e2e-scheduler"
# Run on the hub VM by its own Python: one usage interval written into the ledger that the
# gateway keeps on the state volume (no cluster runs on AWS before issue 14), or read back.
_LEDGER_PROBE = f"""
import sys
from sqlalchemy import select
from deploy.ledger import Ledger, Process
from deploy.ledger.models import UsageInterval
ledger = Ledger.open(state_dir="/var/lib/graticule")
if sys.argv[1] == "write":
    with ledger.writing() as conn:
        process = Process("alice", "ocean", "e2e", "{LEDGER_PROCESS}", "small", "scheduler", 1, 1 << 30, 0.1)
        ledger.open_interval(conn, process, ledger.clock())
with ledger.reading() as conn:
    print(" ".join(sorted(conn.scalars(select(UsageInterval.process)))))
"""


def _ledger_processes(sim: Simulator, instance_id: str, write: bool = False) -> list[str]:
    done = sim.sandboxes[instance_id].exec(
        ["/opt/graticule/venv/bin/python", "-c", _LEDGER_PROBE, "write" if write else "read"])
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()


def _operator_commands(platform: AwsPlatform, instance_id: str) -> None:
    front = platform.front

    def cli(*args: str, timeout: float = 1500):
        return platform.cli(*args, timeout=timeout)

    def everything_up() -> bool:  # the gateway may be restarting (config sync after a boot)
        try:
            return json.loads(cli("status", "--json", timeout=120).stdout)["up"] is True
        except AssertionError:  # exit 1: something is down
            return False

    eventually(everything_up, 180, lambda: "platform status never saw the hub VM, the hub and the gateway up",
               RESTARTING)
    status = json.loads(cli("status", "--json").stdout)
    components = {c["name"]: c for c in status["components"]}
    assert components["hub-vm"]["detail"] == "running" and components["hub-vm"]["address"].startswith(instance_id)
    token = cli("token", "dave").stdout.strip()
    assert token_user(front, token) == "dave"

    def hub_log_shipped() -> bool:
        try:  # the stream appears with the shipper's first batch
            return "JupyterHub" in cli("logs", "hub", "-n", "500", timeout=120).stdout
        except AssertionError:
            return False

    eventually(hub_log_shipped, 180, lambda: "the hub's log never reached CloudWatch Logs", RESTARTING)


def _user_names(admin: Session) -> set[str]:
    answer = admin.api("GET", "/users")
    assert answer.status_code == 200, answer.text
    return {user["name"] for user in answer.json()}

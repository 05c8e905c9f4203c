"""`platform status`, `token` and `logs` for an aws target, through the real CLI.

Real parts: a moto server plays EC2, Secrets Manager and CloudWatch Logs; the hub is a
REAL local platform (JupyterHub, proxy, dask-gateway) standing in for the hub VM, reached
through `GRATICULE_CLOUD_HUB_URL` as the load balancer would be; its admin token is put
into moto's Secrets Manager under the name the hub VM uses; `build/outputs.json` names an
instance made in moto, as apply would; the logs are shipped by the real
`python -m deploy.vm.logship` into moto. Nothing here is a fake.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from deploy.runtime import env
from modules import naming
from tests.support.local_platform import LocalPlatform, http, local_platform
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.procs import free_port, kill_tree

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
NAME = "doortest"
LOG_GROUP = f"/graticule/{NAME}"

LOCAL = f"""\
apiVersion: graticule/v1
name: {NAME}
target: local
cloud:
  aws: {{region: us-west-2, account_id: "123456789012", vpc_cidr: 10.40.0.0/16, zones: 2, egress: nat,
         state_bucket: {NAME}-tfstate}}
hub:
  auth: {{provider: local}}
  instance: {{aws: t3.large}}
  default_profile: small
  idle_timeout: 1h
groups:
  admins: {{admin: true}}
  ocean: {{profiles: [small], environments: [default]}}
users:
  - {{name: alice, groups: [admins, ocean]}}
  - {{name: bob, groups: [ocean]}}
profiles:
  small: {{cpu: 1, memory: 1GiB, instance: {{aws: m7i.large}}}}
dask:
  default_profile: small
environments:
  default: {{python: "3.11", packages: ["dask[distributed]==2026.8.0"]}}
"""
# carol is in the operator's new platform.yaml, not yet on the running hub.
AWS = LOCAL.replace("target: local", "target: aws").replace(
    "  - {name: bob, groups: [ocean]}\n", "  - {name: bob, groups: [ocean]}\n  - {name: carol, groups: [ocean]}\n")


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> LocalPlatform:
    with local_platform(LOCAL, tmp_path_factory.mktemp("hub")) as handle:
        yield handle


@pytest.fixture(scope="module")
def site(tmp_path_factory, moto_server, hub):  # noqa: F811
    """An operator's checkout of an applied aws platform: platform.yaml and build/outputs.json."""
    workdir = tmp_path_factory.mktemp("operator")
    (workdir / "platform.yaml").write_text(AWS)
    ec2 = moto_server.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.large",
                                 SubnetId=subnet)["Instances"][0]
    moto_server.client("logs").create_log_group(logGroupName=LOG_GROUP)
    (workdir / "build").mkdir()
    (workdir / "build" / "outputs.json").write_text(json.dumps({
        "hub_instance_id": instance["InstanceId"],
        "hub_url": "https://hub.doortest.invalid",  # never reached: GRATICULE_CLOUD_HUB_URL wins
        "log_group_name": LOG_GROUP,
        "region": moto_server.region,
    }))
    return {"dir": workdir, "instance": instance["InstanceId"], "private_ip": instance["PrivateIpAddress"]}


def cli_env(moto_server, hub_url: str) -> dict[str, str]:  # noqa: F811
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("GRATICULE_", "AWS_", "JUPYTERHUB_"))}
    environment.update(moto_server.env())
    environment[env.CLOUD_HUB_URL] = hub_url
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return environment


def platform(site: dict, moto_server, hub_url: str, *args: str) -> subprocess.CompletedProcess:  # noqa: F811
    return subprocess.run([sys.executable, "-m", "deploy.cli.main", *args], cwd=site["dir"],
                          env=cli_env(moto_server, hub_url), capture_output=True, text=True, timeout=300)


# --- status -----------------------------------------------------------------------------


def test_status_reports_the_instance_the_hub_and_the_gateway(site, moto_server, hub):  # noqa: F811
    done = platform(site, moto_server, hub.hub_url, "status", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    components = {c["name"]: c for c in report["components"]}
    assert list(components) == ["hub-vm", "hub", "gateway"] and report["up"] is True
    assert components["hub-vm"]["detail"] == "running"
    assert components["hub-vm"]["address"] == f"{site['instance']} ({site['private_ip']})"
    hub_version = http("GET", hub.hub_api_url + "/").json()["version"]
    assert components["hub"]["version"] == hub_version and components["hub"]["address"] == hub.hub_url
    assert components["gateway"]["up"] is True and components["gateway"]["version"]

    table = platform(site, moto_server, hub.hub_url, "status")
    assert table.returncode == 0
    assert [line.split()[:2] for line in table.stdout.splitlines()[1:]] == [["hub-vm", "up"], ["hub", "up"],
                                                                           ["gateway", "up"]]


def test_status_says_what_is_down(site, moto_server, hub):  # noqa: F811
    nobody = f"http://127.0.0.1:{free_port()}"  # the load balancer's path is broken
    done = platform(site, moto_server, nobody, "status", "--json")
    assert done.returncode == 1
    components = {c["name"]: c for c in json.loads(done.stdout)["components"]}
    assert components["hub-vm"]["up"] is True
    assert not components["hub"]["up"] and not components["gateway"]["up"]
    assert components["hub"]["detail"] == "not answering at the hub URL"

    ec2 = moto_server.client("ec2")
    ec2.stop_instances(InstanceIds=[site["instance"]])
    try:
        done = platform(site, moto_server, hub.hub_url, "status", "--json")
        assert done.returncode == 1
        vm = json.loads(done.stdout)["components"][0]
        assert vm["up"] is False and vm["detail"] in {"stopping", "stopped"}
    finally:
        ec2.start_instances(InstanceIds=[site["instance"]])


# --- token ------------------------------------------------------------------------------


def test_token_comes_from_the_hub_with_the_admin_token_in_secrets_manager(site, moto_server, hub):  # noqa: F811
    secrets = moto_server.client("secretsmanager")
    name = naming.secret_name(NAME, "admin-api-token")
    done = platform(site, moto_server, hub.hub_url, "token", "alice")
    assert done.returncode == 1 and f"the secret {name} has no value yet" in done.stderr
    assert "Traceback" not in done.stderr

    # As the hub VM does on its first boot: the secret exists (Terraform), then gets its value.
    secrets.create_secret(Name=name)
    done = platform(site, moto_server, hub.hub_url, "token", "alice")
    assert done.returncode == 1 and "has no value yet" in done.stderr
    admin_token = (hub.state_dir / "secrets" / "admin_api_token").read_text().strip()
    secrets.put_secret_value(SecretId=name, SecretString=admin_token)

    done = platform(site, moto_server, hub.hub_url, "token", "alice")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token and token != admin_token
    assert http("GET", hub.hub_api_url + "/user", token).json()["name"] == "alice"

    refused = platform(site, moto_server, hub.hub_url, "token", "mallory")
    assert refused.returncode == 2
    assert "no user 'mallory'" in refused.stderr and "Traceback" not in refused.stderr

    not_yet = platform(site, moto_server, hub.hub_url, "token", "carol")
    assert not_yet.returncode == 1 and "the hub does not know 'carol' yet" in not_yet.stderr

    secrets.put_secret_value(SecretId=name, SecretString="not-the-admin-token")
    wrong = platform(site, moto_server, hub.hub_url, "token", "bob")
    assert wrong.returncode == 1 and "refused a token for 'bob': HTTP 403" in wrong.stderr


# --- logs, shipped by deploy.vm.logship -------------------------------------------------


class Logship:
    """`python -m deploy.vm.logship` as the hub VM's unit runs it, stopped by PID."""

    def __init__(self, moto_server, root: Path) -> None:  # noqa: F811
        self.moto, self.root = moto_server, root
        self.log_dir, self.state_file = root / "logs", root / "state" / "offsets.json"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.settings = root / "vm.json"
        self.settings.write_text(json.dumps({"platform": NAME, "region": moto_server.region, "log_group": LOG_GROUP,
                                             "state_dir": str(root / "state")}))
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.vm.logship", "--settings", str(self.settings),
             "--log-dir", str(self.log_dir), "--state-file", str(self.state_file), "--interval", "0.2"],
            env=cli_env(self.moto, "unused"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> str:
        """SIGTERM, as systemd stops it: it exits 0 after the batch in flight."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        output, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, output
        self.proc = None
        return output

    def kill(self) -> None:
        if self.proc is not None:
            kill_tree(self.proc.pid)
            self.proc = None


def shipped(moto_server, stream: str, count: int, timeout: float = 90) -> list[str]:  # noqa: F811
    """The stream's messages once it holds `count` of them (fails on more, or on the deadline)."""
    logs = moto_server.client("logs")
    deadline = time.monotonic() + timeout
    messages: list[str] = []
    while time.monotonic() < deadline:
        try:
            events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        messages = [event["message"] for event in events]
        if len(messages) >= count:
            assert len(messages) == count, messages
            return messages
        time.sleep(0.2)
    raise AssertionError(f"{stream}: {len(messages)} of {count} lines shipped: {messages}")


def test_logs_print_what_logship_shipped_once_across_restarts(site, moto_server, hub, tmp_path):  # noqa: F811
    ship = Logship(moto_server, tmp_path)
    hub_log, gateway_log = ship.log_dir / "hub.log", ship.log_dir / "gateway.log"
    hub_log.write_text("one\n\ntwo\npartial")
    gateway_log.write_text("gateway started\n")
    try:
        ship.start()
        assert shipped(moto_server, "hub/hub", 2) == ["one", "two"]  # no blank line, no partial one
        assert shipped(moto_server, "hub/gateway", 1) == ["gateway started"]
        ship.stop()

        # Written while the shipper was down; the partial line is completed.
        with hub_log.open("a") as handle:
            handle.write(" done\nthree\n")
        ship.start()
        assert shipped(moto_server, "hub/hub", 4) == ["one", "two", "partial done", "three"]

        done = platform(site, moto_server, hub.hub_url, "logs", "hub")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "one\ntwo\npartial done\nthree\n"
        last = platform(site, moto_server, hub.hub_url, "logs", "hub", "--lines", "2")
        assert last.stdout == "partial done\nthree\n"
        assert platform(site, moto_server, hub.hub_url, "logs", "gateway").stdout == "gateway started\n"

        # Rotated: a new file under the same name is read from its start.
        hub_log.rename(ship.log_dir / "hub.log.1")
        hub_log.write_text("after rotation\n")
        assert shipped(moto_server, "hub/hub", 5)[-1] == "after rotation"

        # --follow prints the last lines, then each line as it is shipped.
        follower = subprocess.Popen([sys.executable, "-m", "deploy.cli.main", "logs", "hub", "--lines", "1",
                                     "--follow"], cwd=site["dir"], env=cli_env(moto_server, hub.hub_url),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            printed: queue.Queue[str] = queue.Queue()
            threading.Thread(target=lambda: [printed.put(line) for line in follower.stdout], daemon=True).start()
            assert printed.get(timeout=60) == "after rotation\n"
            with hub_log.open("a") as handle:
                handle.write("followed\n")
            assert printed.get(timeout=60) == "followed\n"
        finally:
            kill_tree(follower.pid)
            follower.wait(timeout=30)
        ship.stop()
        offsets = json.loads(ship.state_file.read_text())
        assert offsets["hub.log"] == {"inode": hub_log.stat().st_ino, "offset": len("after rotation\nfollowed\n")}
    finally:
        ship.kill()

    unknown = platform(site, moto_server, hub.hub_url, "logs", "nosuch")
    assert unknown.returncode == 2
    assert "no log stream 'hub/nosuch'" in unknown.stderr and "Traceback" not in unknown.stderr


def test_up_and_down_on_aws_say_what_to_run_instead(site, moto_server, hub):  # noqa: F811
    up = platform(site, moto_server, hub.hub_url, "up")
    assert up.returncode == 2 and "`platform apply`" in up.stderr and "Traceback" not in up.stderr
    down = platform(site, moto_server, hub.hub_url, "down")
    assert down.returncode == 2 and "`platform destroy`" in down.stderr

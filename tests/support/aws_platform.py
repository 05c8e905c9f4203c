"""One platform on the simulated AWS, booted once per test session for every AWS e2e module.

`platform bootstrap` and `platform apply --auto-approve` run the real Terraform AWS
provider against moto; `apply` publishes the wheelhouse and the configuration to the
artifacts bucket, and the machine simulator boots the hub instance from its rendered user
data. Booting a hub costs minutes on a shared machine, so the hub, cluster and notebook
e2e modules share this one (the `aws_platform` fixture in tests/conftest.py). Each test
leaves it as it found it: platform.yaml re-applied as it was, no cluster or server running.
At the end of the session `platform destroy` runs and nothing may be left in moto.

`egress: none`: the simulated instances reach nothing but the moto endpoint (the
simulator's VPC has no uplink), standing in for the VPC endpoints. The simulator does not
model egress, so `nat` would boot the same way (its Terraform is checked by the render tests).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from deploy.runtime.env import CLOUD_HUB_URL
from render.terraform import synthesize_target
from render.validate import validate_text
from tests.support.bootstrap import BUCKET, NAME
from tests.support.hub_e2e import cli, platform_yaml, wait_healthy
from tests.support.hub_settle import SettlingApply
from tests.support.moto_server import MotoServer, running_moto
from tests.support.moto_terraform import moto_server_env, moto_terraform_env
from tests.support.simulator import Simulator

HUB_LOAD_BALANCER = f"{NAME}-hub"  # the ALB: 443 to the hub's proxy
DASK_LOAD_BALANCER = f"{NAME}-dask"  # the NLB: 8786 to the gateway's scheduler TLS proxy
SCHEDULER_PORT = 8786
BOOT_TIMEOUT = 900.0  # a busy shared machine installs ~160 wheels slowly


@dataclass
class AwsPlatform(SettlingApply):
    root: Path  # the admin's checkout: platform.yaml, build/, .platform/
    text: str  # platform.yaml as last applied
    env: dict[str, str]  # the CLI's environment: moto as the endpoint, Terraform overrides
    server: MotoServer
    sim: Simulator
    front: str  # the hub through the ALB's 443 listener: http://127.0.0.1:PORT
    scheduler: str  # the NLB's 8786 listener: tls://127.0.0.1:PORT

    def cli(self, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
        """`platform ARGS` in the admin's checkout; fails the test on a non-zero exit."""
        return cli(self.root, self.env, *args, timeout=timeout)

    def _apply(self) -> subprocess.CompletedProcess[str]:
        return self.cli("apply", "--auto-approve")

    def published_version(self) -> str:
        bucket = self.outputs()["artifacts_bucket"]
        current = self.server.client("s3").get_object(Bucket=bucket, Key="config/current.json")["Body"].read()
        return json.loads(current)["version"]

    def hub_file(self, path: str) -> str | None:
        box = self.sim.sandboxes.get(self.hub_instance())
        found = box.exec(["cat", path]) if box else None
        return found.stdout if found and found.returncode == 0 else None

    def outputs(self) -> dict:
        return json.loads((self.root / "build" / "outputs.json").read_text())

    def hub_instance(self) -> str:
        return self.outputs()["hub_instance_id"]

    def wait_healthy(self, timeout: float = BOOT_TIMEOUT) -> None:
        hub = self.hub_instance()
        wait_healthy(self.front, timeout, lambda: self.diagnose(hub))

    def diagnose(self, instance_id: str) -> str:
        """A sandbox's console and /var/log/graticule, for a failing test's message."""
        box = self.sim.sandboxes.get(instance_id)
        if box is None:
            return f"{instance_id} has no sandbox"
        parts = [f"--- {instance_id} console\n{box.console_log.read_text(errors='replace')[-6000:]}"]
        for log in sorted((box.root / "var/log/graticule").glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


def _bootstrap(root: Path, platform_env: dict[str, str]) -> None:
    """`platform bootstrap` with the provider's endpoints only (its stack has none of the platform's resources)."""
    provider_only = root / "bootstrap-overrides"
    provider_only.mkdir()
    override = json.loads((Path(platform_env["GRATICULE_TF_OVERRIDES"]) / "moto_override.tf.json").read_text())
    (provider_only / "moto_override.tf.json").write_text(json.dumps({"provider": override["provider"]}))
    env = {**platform_env, "GRATICULE_TF_OVERRIDES": str(provider_only)}
    env.pop("TF_CLI_ARGS_plan")
    env.pop("GRATICULE_TF_BACKEND_CONFIG")
    cli(root, env, "bootstrap", "--target", "aws", "--auto-approve")


@contextmanager
def booted_aws_platform(root: Path, egress: str = "none") -> Iterator[AwsPlatform]:
    """Bootstrap, apply and boot the repository's platform.yaml on aws (local logins) in `root`;
    destroy it on the way out and check that nothing is left."""
    text = platform_yaml(egress)
    (root / "platform.yaml").write_text(text)
    main = json.loads(synthesize_target(validate_text(text), "aws")["terraform/aws/main.tf.json"])
    with ExitStack() as stack:
        server = stack.enter_context(running_moto(env=moto_server_env(root / "moto"), log=root / "moto.log"))
        env = moto_terraform_env(server, root / "tf", [main])
        _bootstrap(root, env)
        # moto serves plain HTTP and enforces the state bucket's TLS-only policy: lifted, as in
        # tests/test_bootstrap_apply.py
        server.client("s3").delete_bucket_policy(Bucket=BUCKET)
        sim = stack.enter_context(Simulator(server, root / "sim"))
        platform = AwsPlatform(root, text, env, server, sim, front="", scheduler="")
        try:
            applied = platform.cli("apply", "--auto-approve")
            assert "hub configuration" in applied.stdout + applied.stderr
            sim.wait_running(platform.hub_instance(), timeout=300)
            platform.front = sim.wait_load_balancer(HUB_LOAD_BALANCER, 443, timeout=120)
            platform.env[CLOUD_HUB_URL] = platform.front  # the CLI's status/token/logs reach the hub there
            scheduler = sim.wait_load_balancer(DASK_LOAD_BALANCER, SCHEDULER_PORT, timeout=120)
            platform.scheduler = "tls://" + scheduler.split("://", 1)[1]
            platform.wait_healthy()
        except BaseException:
            _print_diagnosis(platform)
            raise
        try:
            yield platform
        except BaseException:
            _print_diagnosis(platform)
            raise
        platform.cli("destroy", "--yes")
        assert_nothing_left(server)


def _print_diagnosis(platform: AwsPlatform) -> None:
    try:
        print(platform.diagnose(platform.hub_instance()))  # before the sandbox goes
    except (OSError, KeyError, ValueError):
        print("no hub instance to diagnose")


def assert_nothing_left(server: MotoServer) -> None:
    ec2 = server.client("ec2")
    live = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] not in ("terminated", "shutting-down")]
    assert live == []
    assert ec2.describe_volumes()["Volumes"] == []
    assert server.client("secretsmanager").list_secrets()["SecretList"] == []
    buckets = [b["Name"] for b in server.client("s3").list_buckets()["Buckets"]]
    assert buckets == [BUCKET]  # only bootstrap's state bucket

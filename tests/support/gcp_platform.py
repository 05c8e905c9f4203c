"""One platform on the simulated GCP, booted once per test session for every GCP e2e module.

Terraform's Google provider is not mirrored here, so nothing runs `terraform apply` for
gcp. What the rendered stack (main.tf.json) would create is made in the fakes instead
(tests/support/gcp_hub.py: network, subnetwork, instance templates and the hub's state disk
in the fake Compute API, the artifacts bucket in gcp-storage-emulator, the secrets without
versions in the Secret Manager fake, the log bucket and its sink in the Cloud Logging
fake), and `apply` does what `platform apply` does after
Terraform: it renders, writes build/outputs.json (Terraform's outputs, resolved from the
fakes) and publishes the wheelhouse and the configuration (`deploy.cloud_ops.publish_hub`,
run as the CLI runs, in a child process: tests/support/gcp_apply.py). The GCE machine
simulator boots the hub instance from its startup script, behind the rendered load
balancer (the simulator's front door) and the rendered firewall.

Each test leaves the platform as it found it: platform.yaml re-applied as it was, no
cluster or server running. At the end of the session `platform destroy --machines-only`
(destroy's own part: notebook instances, machine secrets, home disks) runs through the CLI,
the harness deletes what Terraform would destroy, and nothing may be left in the fakes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from google.api_core import exceptions as google_errors
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.cloud.google_clients import ENDPOINTS_VARIABLE
from deploy.runtime.env import CLOUD_HUB_URL, WHEELHOUSE_FIND_LINKS
from render.build import render
from render.validate import validate_text
from tests.conftest import REPO as CHECKOUT
from tests.support.gce.clients import client, wait
from tests.support.gce.server import FakeCompute, running_fake_compute
from tests.support.gcp import compute_disks
from tests.support.gcp.cloud_logging import FakeCloudLogging, running_cloud_logging
from tests.support.gcp.secret_manager import FakeSecretManager, running_secret_manager
from tests.support.gcp.storage import RunningGcs, running_gcs
from tests.support.gcp_hub import PROJECT, RenderedStack, platform_yaml
from tests.support.hub_e2e import cli, wait_healthy
from tests.support.hub_settle import SettlingApply
from tests.support.hub_wheelhouse import hub_wheels
from tests.support.simulator.gce_simulator import GceSimulator

BOOT_TIMEOUT = 900.0  # a busy shared machine installs ~170 wheels slowly
SCHEDULER_PORT = 8786
_REFERENCE = re.compile(r"\$\{(google_[a-z_]+)\.([\w-]+)\.([\w.]+)\}")


@dataclass
class GcpPlatform(SettlingApply):
    root: Path  # the admin's checkout: platform.yaml, build/ (with outputs.json)
    text: str  # platform.yaml as last applied
    env: dict[str, str]  # the CLI's environment: the endpoints file, GRATICULE_CLOUD_HUB_URL
    compute: FakeCompute
    gcs: RunningGcs
    secret_manager: FakeSecretManager
    sim: GceSimulator
    stack: RenderedStack
    front: str = ""  # the hub through the rendered HTTPS forwarding rule: http://127.0.0.1:PORT
    scheduler: str = ""  # the rendered 8786 forwarding rule: tls://127.0.0.1:PORT ("" if none is rendered)
    main: dict = field(default_factory=dict)  # main.tf.json as first rendered
    cloud_logging: FakeCloudLogging | None = None  # the rendered log bucket and sink in it

    def cli(self, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
        """`platform ARGS` in the admin's checkout; fails the test on a non-zero exit."""
        return cli(self.root, self.env, *args, timeout=timeout)

    def cli_unchecked(self, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
        """`platform ARGS`, whatever its exit code (`status` exits 1 when something is down)."""
        return subprocess.run([sys.executable, "-m", "deploy.cli.main", *args], cwd=self.root,
                              env=_child_env(self.env), capture_output=True, text=True, timeout=timeout)

    def _apply(self) -> subprocess.CompletedProcess[str]:
        """What `platform apply` does after Terraform: render, outputs, publish (see the module's doc)."""
        (self.root / "terraform-outputs.json").write_text(json.dumps(self.outputs_from_fakes()))
        done = subprocess.run([sys.executable, "-m", "tests.support.gcp_apply", "terraform-outputs.json"],
                              cwd=self.root, env=_child_env(self.env), capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, \
            f"apply (gcp, without Terraform): exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def published_version(self) -> str:
        blob = self.gcs.client().bucket(self.outputs()["artifacts_bucket"]).blob("config/current.json")
        return json.loads(blob.download_as_bytes())["version"]

    def hub_file(self, path: str) -> str | None:
        boxes = self.sim.booted(self.hub_instance())
        found = boxes[-1].exec(["cat", path]) if boxes else None  # the latest boot of the hub's name
        return found.stdout if found and found.returncode == 0 else None

    def outputs(self) -> dict:
        return json.loads((self.root / "build" / "outputs.json").read_text())

    def hub_instance(self) -> str:
        return self.stack.hub["name"]

    def wait_healthy(self, timeout: float = BOOT_TIMEOUT) -> None:
        wait_healthy(self.front, timeout, lambda: self.diagnose(self.hub_instance()))

    def diagnose(self, name: str) -> str:
        """The console and /var/log/graticule of the sandboxes booted for instance `name`."""
        parts = []
        for box in self.sim.booted(name):
            parts.append(f"--- {name} console\n{box.console_log.read_text(errors='replace')[-6000:]}")
            for log in sorted((box.root / "var/log/graticule").glob("*.log")):
                parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts) or f"{name} has no booted sandbox"

    # -- Terraform's outputs ----------------------------------------------------------------

    def outputs_from_fakes(self) -> dict:
        """main.tf.json's outputs with each reference resolved to what the fakes hold."""
        return {name: self._resolved(output["value"]) for name, output in self.main["output"].items()}

    def _resolved(self, value):
        if isinstance(value, dict):
            return {key: self._resolved(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._resolved(item) for item in value]
        if isinstance(value, str) and (match := _REFERENCE.fullmatch(value)):
            return self._attribute(*match.groups())
        return value

    def _attribute(self, kind: str, name: str, attribute: str):
        resource = self.stack.resources[kind][name]
        if kind == "google_compute_instance" and attribute == "network_interface.0.network_ip":
            try:  # known once the hub instance exists
                found = client(self.compute, "InstancesClient").get(
                    project=PROJECT, zone=self.stack.zone, instance=resource["name"])
            except google_errors.NotFound:
                return None
            return found.network_interfaces[0].network_i_p
        if kind == "google_compute_instance" and attribute == "zone":
            return self.stack.zone
        if kind == "google_compute_instance_template" and attribute == "self_link":
            return f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/global/instanceTemplates/{resource['name']}"
        if kind == "google_compute_global_address" and attribute == "address":
            return None  # no global address in the fakes: the front door is the host's listener
        if kind == "google_logging_project_bucket_config" and attribute == "id":
            return f"projects/{PROJECT}/locations/{resource['location']}/buckets/{resource['bucket_id']}"
        if attribute in ("name", "secret_id") and attribute in resource:
            return resource[attribute]
        return self.stack.rendered.resolve(f"${{{kind}.{name}.{attribute}}}")  # ids, emails: as the provider


def _child_env(env: dict[str, str]) -> dict[str, str]:
    inherited = os.environ.get("PYTHONPATH")
    return {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(CHECKOUT), *([inherited] if inherited else [])])}


@contextmanager
def booted_gcp_platform(root: Path) -> Iterator[GcpPlatform]:
    """The repository's platform.yaml on gcp (local logins) in `root`, its stack made in the
    fakes, applied and its hub booted; on the way out, what Terraform would destroy is
    deleted and nothing may be left."""
    text = platform_yaml()
    (root / "platform.yaml").write_text(text)
    main = json.loads(render(validate_text(text))["terraform/gcp/main.tf.json"])
    with ExitStack() as stack:
        compute = stack.enter_context(running_fake_compute(PROJECT))
        gcs = stack.enter_context(running_gcs(PROJECT))
        secret_manager = stack.enter_context(running_secret_manager(PROJECT))
        cloud_logging = stack.enter_context(running_cloud_logging(PROJECT))
        cloud_logging.add_rendered(main)  # what Terraform makes of the logs construct
        sim = stack.enter_context(GceSimulator(compute, root / "sim", storage=gcs.url,
                                               secretmanager=secret_manager.url, logging=cloud_logging.url))
        endpoints = root / "google-endpoints.json"
        endpoints.write_text(json.dumps({"compute": compute.url, "storage": gcs.url,
                                         "secretmanager": secret_manager.url, "logging": cloud_logging.url}))
        env = {ENDPOINTS_VARIABLE: str(endpoints), WHEELHOUSE_FIND_LINKS: str(hub_wheels()), **gcs.environment()}
        rendered = RenderedStack(main, compute, gcs, _secret_client(secret_manager))
        platform = GcpPlatform(root, text, env, compute, gcs, secret_manager, sim, rendered, main=main,
                               cloud_logging=cloud_logging)
        try:
            rendered.create()
            sim.firewall(main)
            door = sim.front_door(main)
            platform.front = door.url(443)
            platform.env[CLOUD_HUB_URL] = platform.front  # the CLI's status/token reach the hub there
            if any(port == SCHEDULER_PORT for port in _forwarded_ports(main)):
                platform.scheduler = "tls://" + door.url(SCHEDULER_PORT).split("://", 1)[1]
            # Terraform's order: the hub instance exists (and so its private IP, in the outputs)
            # before apply publishes; its startup script waits for the configuration.
            rendered.insert_hub()
            platform.apply(settle=False)  # the hub boots with it: nothing runs to restart yet
            sim.wait_running(platform.hub_instance(), timeout=300)
            platform.wait_healthy()
        except BaseException:
            print(platform.diagnose(platform.hub_instance()))  # before the sandbox goes
            raise
        try:
            yield platform
        except BaseException:
            print(platform.diagnose(platform.hub_instance()))
            raise
        # `platform destroy`'s own part (what the hub made at run time: notebook instances,
        # machine secrets, home disks), through the CLI; then what Terraform would destroy.
        platform.cli("destroy", "--yes", "--machines-only", timeout=900)
        destroy_rendered(platform)
        assert_nothing_left(platform)


def _secret_client(secret_manager: FakeSecretManager):
    return secretmanager.SecretManagerServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": secret_manager.url})


def _forwarded_ports(main: dict) -> list[int]:
    rules = main["resource"].get("google_compute_global_forwarding_rule", {}).values()
    return [int(rule["port_range"].split("-")[0]) for rule in rules if rule.get("port_range")]


def destroy_rendered(platform: GcpPlatform) -> None:
    """What `terraform destroy` would delete of what the platform's runtime could touch: the
    hub instance, its fixed address, its state disk, the artifacts bucket, the rendered secrets. (The network,
    subnetwork and templates stay in the fake: nothing at run time creates or changes them.)"""
    compute, zone = platform.compute, platform.stack.zone
    _deleted(lambda: wait(compute, client(compute, "InstancesClient").delete(
        project=PROJECT, zone=zone, instance=platform.hub_instance())))
    platform.sim.wait_stopped(platform.hub_instance(), timeout=300)
    addresses = client(compute, "AddressesClient")
    for address in platform.main["resource"].get("google_compute_address", {}).values():  # free once the hub went
        _deleted(lambda a=address: wait(compute, addresses.delete(project=PROJECT, region=a["region"],
                                                                  address=a["name"])))
    for disk in platform.stack.disks:
        _deleted(lambda disk=disk: wait(compute, client(compute, "DisksClient").delete(
            project=PROJECT, zone=zone, disk=disk)))
    for bucket in platform.gcs.client().list_buckets():
        for blob in bucket.list_blobs():
            blob.delete()
        bucket.delete()
    secrets = _secret_client(platform.secret_manager)
    for secret in platform.main["resource"].get("google_secret_manager_secret", {}).values():
        _deleted(lambda s=secret: secrets.delete_secret(name=f"projects/{PROJECT}/secrets/{s['secret_id']}"))


def _deleted(delete) -> None:
    with contextlib.suppress(google_errors.NotFound):  # already gone, as Terraform's destroy would find it
        delete()


def assert_nothing_left(platform: GcpPlatform) -> None:
    """No instance, address, disk, secret or bucket: what the runtime made went with it."""
    instances = client(platform.compute, "InstancesClient").aggregated_list(project=PROJECT)
    assert [i.name for _, scoped in instances for i in scoped.instances] == []
    assert sorted(platform.compute.store.addresses) == []
    assert [name for _, name in compute_disks.disks_of(platform.compute)] == []
    assert sorted(platform.secret_manager.secrets) == []
    assert [b.name for b in platform.gcs.client().list_buckets()] == []

"""An operator's checkout of a gcp platform applied earlier, on Google's fakes, for the
`platform` CLI's runtime commands (`status`, `token`, `logs`) run as an operator runs them.

The hub instance is made in the fake Compute API (tests/support/gce), next to the Secret
Manager and Cloud Logging fakes (tests/support/gcp; each checked against its discovery
document), all reached by Google's client libraries through the endpoints file
`GRATICULE_GOOGLE_ENDPOINTS` names. The checkout holds platform.yaml and build/outputs.json
as `platform apply` left them; Cloud Logging routes the hub's logs into the platform's log
bucket by the rendered sink's filter.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from deploy.cloud.google_clients import ENDPOINTS_VARIABLE
from deploy.runtime import env
from modules.gcp.logs import log_filter
from tests.support.gce.clients import client, wait
from tests.support.gce.server import FakeCompute, running_fake_compute
from tests.support.gce.setup import IMAGE, network
from tests.support.gcp.cloud_logging import FakeCloudLogging, running_cloud_logging
from tests.support.gcp.secret_manager import FakeSecretManager, running_secret_manager

REPO = Path(__file__).resolve().parents[2]
NAME = "gdoortest"
PROJECT = "oceanlab-prod"
ZONE = "us-central1-a"
LOG_BUCKET = f"projects/{PROJECT}/locations/us-central1/buckets/{NAME}-logs"
LOCAL = f"""\
apiVersion: graticule/v1
name: {NAME}
target: local
cloud:
  gcp: {{project: {PROJECT}, region: us-central1, vpc_cidr: 10.50.0.0/16, egress: nat, state_bucket: {NAME}-tfstate}}
hub:
  auth: {{provider: local}}
  instance: {{gcp: e2-standard-2}}
  default_profile: small
  idle_timeout: 1h
groups:
  admins: {{admin: true}}
  ocean: {{profiles: [small], environments: [default]}}
users:
  - {{name: alice, groups: [admins, ocean]}}
  - {{name: bob, groups: [ocean]}}
profiles:
  small: {{cpu: 1, memory: 1GiB, instance: {{gcp: e2-standard-2}}}}
dask:
  default_profile: small
environments:
  default: {{python: "3.11", packages: ["dask[distributed]==2026.8.0"]}}
"""
GCP = LOCAL.replace("target: local", "target: gcp")
# What the operator's environment must not leak into the CLI: this process's platform,
# Google credentials and metadata, a JupyterHub session.
NOT_THE_OPERATORS = ("GRATICULE_", "GOOGLE_", "GCE_", "JUPYTERHUB_")


@dataclass(frozen=True)
class GcpOperator:
    dir: Path  # the checkout: platform.yaml, build/outputs.json
    endpoints: Path  # the endpoints file: every Google API at its fake
    compute: FakeCompute
    secrets: FakeSecretManager
    logging: FakeCloudLogging
    hub_ip: str  # the hub instance's internal address

    def cli_env(self, hub_url: str | None = None) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith(NOT_THE_OPERATORS)}
        environment[ENDPOINTS_VARIABLE] = str(self.endpoints)
        if hub_url is not None:  # the load balancer's address, as `platform apply` wrote none here
            environment[env.CLOUD_HUB_URL] = hub_url
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        return environment

    def cli(self, *args: str, hub_url: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """`platform ARGS` in the checkout (or `cwd`), as the operator runs it."""
        return subprocess.run([sys.executable, "-m", "deploy.cli.main", *args], cwd=cwd or self.dir,
                              env=self.cli_env(hub_url), capture_output=True, text=True, timeout=300)


@contextlib.contextmanager
def gcp_operator(workdir: Path) -> Iterator[GcpOperator]:
    with (running_fake_compute(PROJECT) as compute, running_secret_manager(PROJECT) as secrets,
          running_cloud_logging(PROJECT) as logging):
        logging.add_sink(LOG_BUCKET, log_filter(SimpleNamespace(name=NAME)))  # the rendered sink's filter
        endpoints = workdir / "endpoints.json"
        endpoints.write_text(json.dumps({"compute": compute.url, "secretmanager": secrets.url,
                                         "logging": logging.url}))
        checkout = workdir / "operator"
        (checkout / "build").mkdir(parents=True)
        (checkout / "platform.yaml").write_text(GCP)
        (checkout / "build" / "outputs.json").write_text(json.dumps({
            "hub_instance": f"{NAME}-hub",
            "hub_zone": ZONE,
            "hub_url": f"https://hub.{NAME}.invalid",  # never reached: GRATICULE_CLOUD_HUB_URL wins
            "project": PROJECT,
            "log_bucket": LOG_BUCKET,
        }))
        yield GcpOperator(checkout, endpoints, compute, secrets, logging, _hub_instance(compute))


def _hub_instance(compute: FakeCompute) -> str:
    """The hub instance, RUNNING; its internal address."""
    from google.cloud import compute_v1

    subnetwork = network(compute, {"us-central1": "10.50.0.0/16"})["us-central1"]
    boot = compute_v1.AttachedDiskInitializeParams(source_image=IMAGE, disk_size_gb=10)
    instances = client(compute, "InstancesClient")
    wait(compute, instances.insert(project=PROJECT, zone=ZONE, instance_resource=(
        compute_v1.Instance(name=f"{NAME}-hub", machine_type=f"zones/{ZONE}/machineTypes/e2-standard-2",
                            disks=[compute_v1.AttachedDisk(boot=True, auto_delete=True, initialize_params=boot)],
                            network_interfaces=[compute_v1.NetworkInterface(subnetwork=subnetwork)]))))
    compute.settle()  # RUNNING
    return instances.get(project=PROJECT, zone=ZONE, instance=f"{NAME}-hub").network_interfaces[0].network_i_p

"""The gateway on GCP: schedulers and workers on Compute Engine instances from the
profiles' instance templates (see `deploy.gateway.vm`), in the zones of the platform's
region (asked of Compute once), Spot first where the profile allows it; their credentials
in Secret Manager (`deploy.cloud.gcp_machine_secrets`), handed to each machine by the
broker in this gateway's API (`deploy.gateway.machine_secret_broker`); their software from
the artifacts bucket's wheel cache (`deploy.cloud.gcp_machine_boot`): a locked environment's,
or a synced one (`Cluster(sync=True)`) built and published to Cloud Storage by this gateway
(`deploy.gateway.vm_synced`).

Terraform's outputs (read by `VMBackend.outputs`) also give each user's worker service
account. The machines reach the gateway's API through the hub's proxy (the one port the
firewall opens to them on the hub) at the hub's private address, asked of the hub's metadata
server (else Terraform's output).
"""

from __future__ import annotations

import asyncio
import os
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

from traitlets import Integer, List, Unicode

from deploy.cloud.gcp import GCPMachines, on_vm_arguments
from deploy.cloud.gcp_machine_boot import METADATA, GcpMachineBoot, gcp_machine_startup_script
from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets
from deploy.cloud.google_clients import ENDPOINTS_VARIABLE, identity_certs_url
from deploy.gateway.machine_secret_broker import MachineSecretBroker
from deploy.gateway.vm_synced import SyncingVMBackend
from deploy.vm.gcp_stores import GcsObjects
from modules import naming


class GCPBackend(SyncingVMBackend):
    zone = Unicode(help="One zone to run in (default: every zone of the platform's region)", config=True)
    zones = List(Unicode(), help="The zones tried, in order (default: every zone of the platform's region)",
                 config=True)

    machine_threads = Integer(
        0, help="Threads for calls to Compute Engine (default: dask-gateway's parallelism and 4 more)", config=True)

    def hub_private_ip(self) -> str | None:
        # The hub's own address first (Terraform's output names the same one: fixed, modules.gcp.hub).
        return _own_private_ip() or super().hub_private_ip()

    async def do_setup(self) -> None:
        # Each launch waits for its insert operation (its capacity error is what moves it to the
        # next zone): seconds on Compute Engine. asyncio's default pool, min(32, cpus + 4) threads,
        # would let only a few of dask-gateway's `parallelism` handlers launch at once.
        threads = self.machine_threads or self.parallelism + 4
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gcp-machines"))
        await super().do_setup()

    @property
    def project(self) -> str:
        return self.worker_template(self.spec.dask.default_profile)["project"]

    def make_machines(self) -> GCPMachines:
        template = self.worker_template(self.spec.dask.default_profile)
        zones = list(self.zones) or ([self.zone] if self.zone else [])
        # On the hub VM: the instance's account; a simulated VM's endpoints file stands in for Google.
        return GCPMachines(project=template["project"], zones=zones, regions=[template["region"]],
                           **on_vm_arguments())

    def make_secrets(self) -> GcpMachineSecrets:
        return GcpMachineSecrets(self.project, self.spec.name, on_vm=ENDPOINTS_VARIABLE not in os.environ)

    @property
    def secret_broker(self) -> MachineSecretBroker:
        """Served by the gateway's API (deploy.gateway.api): the machines' secrets, to them only."""
        if getattr(self, "_broker", None) is None:
            self._broker = MachineSecretBroker(self.secrets, naming.machine_secrets_audience(self.spec.name),
                                               identity_certs_url(), instances=self.machines.instance)
        return self._broker

    def template_of(self, worker_template: dict) -> str:
        project, name = worker_template["project"], worker_template["instance_template_name"]
        return f"projects/{project}/global/instanceTemplates/{name}"

    def instance_profile_of(self, username: str) -> str | None:
        """The user's worker service account: it reaches only the buckets the user's groups were granted."""
        return (self.outputs.get("worker_service_account_by_user") or {}).get(username)

    @cached_property
    def artifacts(self) -> GcsObjects:
        # On the hub VM: the instance's account; a simulated VM's endpoints file stands in for Google.
        return GcsObjects(self.artifacts_bucket, project=self.project, on_vm=ENDPOINTS_VARIABLE not in os.environ)

    def boot_user_data(self, cluster, command: list[str], environment: dict[str, str],
                       secret_key: str | None = None) -> str:
        key = self.environment_key(cluster)
        return gcp_machine_startup_script(GcpMachineBoot(
            platform=self.spec.name, bucket=self.artifacts_bucket, api_url=self.api_url,
            secret=secret_key or self.secret_key(cluster), command=command, environment=key, env=environment,
            # without a locked environment, Dask comes from the platform's own wheelhouse
            platform_software=key is None,
        ))


def _own_private_ip() -> str | None:
    """This VM's private address, from its metadata server (None off a VM)."""
    if ENDPOINTS_VARIABLE in os.environ:  # a test's process, not a VM
        return None
    request = urllib.request.Request(f"{METADATA}/computeMetadata/v1/instance/network-interfaces/0/ip",
                                     headers={"Metadata-Flavor": "Google"})
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return answer.read().decode().strip() or None
    except OSError:
        return None


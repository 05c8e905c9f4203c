"""The gateway on GCP: schedulers and workers on Compute Engine instances from the
profiles' instance templates (see `deploy.gateway.vm`), in the zones of the platform's
region (asked of Compute once), Spot first where the profile allows it."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from traitlets import Integer, List, Unicode

from deploy.cloud.gcp import GCPMachines, on_vm_arguments
from deploy.gateway.vm import VMBackend


class GCPBackend(VMBackend):
    zone = Unicode(help="One zone to run in (default: every zone of the platform's region)", config=True)
    zones = List(Unicode(), help="The zones tried, in order (default: every zone of the platform's region)",
                 config=True)

    machine_threads = Integer(
        0, help="Threads for calls to Compute Engine (default: dask-gateway's parallelism and 4 more)", config=True)

    async def do_setup(self) -> None:
        # Each launch waits for its insert operation (its capacity error is what moves it to the
        # next zone): seconds on Compute Engine. asyncio's default pool, min(32, cpus + 4) threads,
        # would let only a few of dask-gateway's `parallelism` handlers launch at once.
        threads = self.machine_threads or self.parallelism + 4
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gcp-machines"))
        await super().do_setup()

    def make_machines(self) -> GCPMachines:
        template = self.worker_template(self.spec.dask.default_profile)
        zones = list(self.zones) or ([self.zone] if self.zone else [])
        # On the hub VM: the instance's account; a simulated VM's endpoints file stands in for Google.
        return GCPMachines(project=template["project"], zones=zones, regions=[template["region"]],
                           **on_vm_arguments())

    def template_of(self, worker_template: dict) -> str:
        project, name = worker_template["project"], worker_template["instance_template_name"]
        return f"projects/{project}/global/instanceTemplates/{name}"

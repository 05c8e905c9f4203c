"""The gateway on GCP: schedulers and workers on Compute Engine instances from the
profiles' instance templates (see `deploy.gateway.vm`)."""

from __future__ import annotations

from traitlets import Unicode

from deploy.cloud.gcp import GCPMachines
from deploy.gateway.vm import VMBackend


class GCPBackend(VMBackend):
    zone = Unicode(help="The zone the machines run in (default: the region's first, '<region>-a')", config=True)

    def make_machines(self) -> GCPMachines:
        template = self.worker_template(self.spec.dask.default_profile)
        return GCPMachines(project=template["project"], zone=self.zone or f"{template['region']}-a")

    def template_of(self, worker_template: dict) -> str:
        project, name = worker_template["project"], worker_template["instance_template_name"]
        return f"projects/{project}/global/instanceTemplates/{name}"

"""The gateway on GCP: schedulers and workers on Compute Engine instances from the
profiles' instance templates (see `deploy.gateway.vm`), in the zones of the platform's
region (asked of Compute once), Spot first where the profile allows it."""

from __future__ import annotations

from traitlets import List, Unicode

from deploy.cloud.gcp import GCPMachines
from deploy.cloud.gcp_endpoints import google_endpoint
from deploy.gateway.vm import VMBackend


class GCPBackend(VMBackend):
    zone = Unicode(help="One zone to run in (default: every zone of the platform's region)", config=True)
    zones = List(Unicode(), help="The zones tried, in order (default: every zone of the platform's region)",
                 config=True)

    def make_machines(self) -> GCPMachines:
        template = self.worker_template(self.spec.dask.default_profile)
        zones = list(self.zones) or ([self.zone] if self.zone else [])
        endpoint = google_endpoint("compute")  # a simulated VM's stand-in for Private Google Access
        return GCPMachines(project=template["project"], zones=zones, regions=[template["region"]],
                           client_options={"api_endpoint": endpoint} if endpoint else None)

    def template_of(self, worker_template: dict) -> str:
        project, name = worker_template["project"], worker_template["instance_template_name"]
        return f"projects/{project}/global/instanceTemplates/{name}"

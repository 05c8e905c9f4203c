"""The gateway on AWS: schedulers and workers on EC2 instances from the profiles' launch
templates (see `deploy.gateway.vm`)."""

from __future__ import annotations

from deploy.cloud.aws import AWSMachines
from deploy.gateway.vm import VMBackend


class AWSBackend(VMBackend):
    def make_machines(self) -> AWSMachines:
        profile = self.spec.dask.default_profile
        # Into the platform's private subnets, found by their tags (one per zone).
        return AWSMachines(region=self.worker_template(profile)["region"], platform=self.spec.name)

    def template_of(self, worker_template: dict) -> str:
        return worker_template["launch_template_name"]

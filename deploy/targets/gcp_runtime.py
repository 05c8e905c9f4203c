"""`platform status` and `token` for a platform applied on GCP, without SSH: the AWS
runtime's logic (deploy.targets.cloud_runtime) with GCP's calls.

The hub instance's state comes from Compute Engine (`hub_instance` and `hub_zone` in
build/outputs.json), the admin token from Secret Manager, both with the operator's
Application Default Credentials (or a test's stand-ins, deploy.cloud.google_clients). `platform
logs` is not there yet on gcp: the hub VM ships no logs to Cloud Logging so far (its
components' logs stay in /var/log/graticule on the VM).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from deploy.cloud.operator_gcp import GcpOperator
from deploy.errors import UserError
from deploy.targets.cloud_runtime import AwsRuntime
from modules import naming


class GcpRuntime(AwsRuntime):
    INSTANCE_OUTPUT = "hub_instance"

    @property
    def project(self) -> str:
        return self.outputs.get("project") or self.platform.cloud.gcp.project

    def _make_operator(self) -> GcpOperator:
        return GcpOperator(self.project, self._output("hub_zone"))

    def secret_name(self, key: str) -> str:
        return f"projects/{self.project}/secrets/{naming.gcp_secret_id(self.platform.name, key)}"

    def logs(self, which: str, *, lines: int, follow: bool, wait: Callable[[], None] = lambda: None) -> Iterator[str]:
        raise UserError("`platform logs` is not available on gcp yet: the hub VM keeps its components' logs in "
                        "/var/log/graticule (`platform status` shows whether they are up)")

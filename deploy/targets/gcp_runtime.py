"""`platform status` and `token` for a platform applied on GCP, without SSH: the AWS
runtime's logic (deploy.targets.cloud_runtime) with GCP's calls.

The hub instance's state comes from Compute Engine (`hub_instance` and `hub_zone` in
build/outputs.json), the admin token from Secret Manager, both with the operator's
Application Default Credentials (or a test's stand-ins, deploy.vm.gcp_stores). `platform
logs` is not there yet on gcp: the hub VM ships no logs to Cloud Logging so far (its
components' logs stay in /var/log/graticule on the VM).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from deploy.cloud.operator import InstanceState
from deploy.errors import RuntimeFailure, UserError
from deploy.targets.cloud_runtime import AwsRuntime
from deploy.vm.gcp_stores import client_arguments
from modules import naming

# Compute Engine's instance statuses, as `platform status` words them (running = up).
_STATES = {"RUNNING": "running", "PROVISIONING": "pending", "STAGING": "pending", "STOPPING": "stopping",
           "SUSPENDING": "stopping", "SUSPENDED": "stopped", "TERMINATED": "stopped", "REPAIRING": "pending"}


def _last(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


class GcpOperator:
    def __init__(self, project: str, zone: str) -> None:
        self.project, self.zone = project, _last(zone)

    def instance(self, name: str) -> InstanceState | None:
        """The instance, or None when Compute Engine does not know it (any more)."""
        from google.api_core.exceptions import GoogleAPIError, NotFound
        from google.cloud import compute_v1

        client = compute_v1.InstancesClient(transport="rest", **client_arguments("compute"))
        try:
            raw = client.get(project=self.project, zone=self.zone, instance=name)
        except NotFound:
            return None
        except GoogleAPIError as exc:
            raise RuntimeFailure(f"gcp compute instances.get {name} failed: {exc}") from None
        address = raw.network_interfaces[0].network_i_p if raw.network_interfaces else None
        return InstanceState(raw.name, _STATES.get(raw.status, raw.status.lower()), address or None)

    def secret(self, name: str) -> str | None:
        """The secret's latest value, or None when it does not exist or has no version yet."""
        from google.api_core.exceptions import FailedPrecondition, GoogleAPIError, NotFound
        from google.cloud import secretmanager

        client = secretmanager.SecretManagerServiceClient(transport="rest", **client_arguments("secretmanager"))
        try:
            return client.access_secret_version(name=f"{name}/versions/latest").payload.data.decode()
        except (NotFound, FailedPrecondition):
            return None
        except GoogleAPIError as exc:
            raise RuntimeFailure(f"gcp secretmanager access {name} failed: {exc}") from None


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

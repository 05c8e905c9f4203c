"""What the operator's `platform status` and `token` ask GCP, with the operator's own
credentials (Application Default Credentials; a test's stand-ins through
deploy.cloud.google_clients): the hub instance's state (Compute Engine) and a secret's
value (Secret Manager). The clients are imported when first used (the `[gcp]` extra).
"""

from __future__ import annotations

from deploy.cloud.google_clients import client_arguments
from deploy.cloud.operator import InstanceState
from deploy.errors import RuntimeFailure

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

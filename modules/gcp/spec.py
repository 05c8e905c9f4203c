"""What the GCP stack needs to know, as plain values.

`render.terraform_gcp.gcp_spec` fills these from the validated platform.yaml model, so
the constructs here stay free of `render` imports (layout rule: modules import nothing of
ours). The fields both clouds share, and mean alike, come from `modules.spec.CloudSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass

from modules.spec import HUB_PORT, BucketSpec, BudgetSpec, CloudSpec, Grant, WorkerAccess

# The shared values are re-exported: each cloud's constructs import their spec from one place.
__all__ = ["HUB_PORT", "BucketSpec", "BudgetSpec", "GcpSpec", "Grant", "ProfileSpec", "WorkerAccess"]


@dataclass(frozen=True)
class ProfileSpec:
    name: str
    machine_type: str
    spot: bool = False
    gpu_type: str | None = None  # a GCP accelerator type, e.g. nvidia-tesla-t4
    gpu_count: int = 0
    # a2/a3/a4/g2/g4 machine types bring their GPUs: nothing to attach, but they still
    # cannot live-migrate on host maintenance.
    gpu_built_in: bool = False


@dataclass(frozen=True, kw_only=True)
class GcpSpec(CloudSpec):
    project: str
    hub_machine_type: str
    profiles: tuple[ProfileSpec, ...] = ()
    # the hub's auth needs an OAuth client secret (github, oidc): its Secret Manager secret exists
    oauth_client_secret: bool = False

    @property
    def labels(self) -> dict[str, str]:
        """Applied to every labelable resource through the provider's default_labels."""
        return self.platform_labels

"""What the AWS stack needs to know, as plain values.

`render.terraform` fills these from the validated platform.yaml model, so the constructs
here stay free of `render` imports (layout rule: modules import nothing of ours). What both
clouds take in the same shape (budgets, buckets, grants) lives in `modules.spec`.
"""

from __future__ import annotations

from dataclasses import dataclass

from modules.spec import HUB_PORT, BucketSpec, BudgetSpec, CloudSpec, Grant, WorkerAccess

# The shared values are re-exported: each cloud's constructs import their spec from one place.
__all__ = ["HUB_PORT", "AwsSpec", "BucketSpec", "BudgetSpec", "Grant", "ProfileSpec", "WorkerAccess", "partition"]


@dataclass(frozen=True)
class ProfileSpec:
    name: str
    instance_type: str
    spot: bool = False
    gpu_type: str | None = None
    gpu_count: int = 0


@dataclass(frozen=True, kw_only=True)
class AwsSpec(CloudSpec):
    account_id: str
    zones: int
    hub_instance_type: str
    profiles: tuple[ProfileSpec, ...] = ()
    # `ci.repository` when `ci.runner: self-hosted` (a runner VM in the VPC), else None
    ci_runner_repository: str | None = None
    # the hub's auth needs an OAuth client secret (github, oidc): its Secrets Manager secret exists
    oauth_client_secret: bool = False

    @property
    def partition(self) -> str:
        return partition(self.region)

    @property
    def tags(self) -> dict[str, str]:
        """Applied to every taggable resource through the provider's default_tags."""
        return self.platform_labels


def partition(region: str) -> str:
    """The ARN partition of a region: GovCloud regions have their own."""
    return "aws-us-gov" if "-gov-" in region else "aws"

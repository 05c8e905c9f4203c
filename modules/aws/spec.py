"""What the AWS stack needs to know, as plain values.

`render.terraform` fills these from the validated platform.yaml model, so the constructs
here stay free of `render` imports (layout rule: modules import nothing of ours).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Access = Literal["read", "read-write"]

# The JupyterHub proxy's public port on the hub VM: the load balancer forwards 443 here,
# and notebook servers and Dask schedulers call the hub and gateway APIs through it.
HUB_PORT = 8000


@dataclass(frozen=True)
class ProfileSpec:
    name: str
    instance_type: str
    spot: bool = False
    gpu_type: str | None = None
    gpu_count: int = 0


@dataclass(frozen=True)
class BudgetSpec:
    name: str
    monthly_usd: float
    alert_percents: tuple[int, ...] = ()


@dataclass(frozen=True)
class BucketSpec:
    name: str  # the integration's name in platform.yaml
    bucket: str
    existing: bool = False


@dataclass(frozen=True, order=True)
class Grant:
    storage: str  # the integration's name in platform.yaml
    bucket: str
    access: Access


@dataclass(frozen=True)
class WorkerAccess:
    """One worker identity: the bucket grants shared by a set of users."""

    key: str  # short and stable: used in resource and role names
    grants: tuple[Grant, ...]  # sorted by storage name
    users: tuple[str, ...]


@dataclass(frozen=True)
class AwsSpec:
    name: str
    region: str
    account_id: str
    vpc_cidr: str
    zones: int
    egress: Literal["nat", "none"]
    state_bucket: str
    hub_instance_type: str
    domain: str | None = None
    log_retention_days: int = 30
    alert_emails: tuple[str, ...] = ()
    profiles: tuple[ProfileSpec, ...] = ()
    budgets: tuple[BudgetSpec, ...] = ()
    buckets: tuple[BucketSpec, ...] = ()
    worker_access: tuple[WorkerAccess, ...] = field(default_factory=tuple)
    # `ci.repository` when `ci.runner: self-hosted` (a runner VM in the VPC), else None
    ci_runner_repository: str | None = None

    @property
    def partition(self) -> str:
        return "aws-us-gov" if "-gov-" in self.region else "aws"

    @property
    def tags(self) -> dict[str, str]:
        """Applied to every taggable resource through the provider's default_tags."""
        return {"platform": self.name, "managed-by": "graticule"}

"""Plain values that both cloud stacks take in the same shape.

`AwsSpec` and `GcpSpec` (in `modules.aws.spec`, `modules.gcp.spec`) extend `CloudSpec`
with what differs per cloud: account fields, and profiles naming an instance or a machine
type. The render step fills them from the validated model; nothing here imports `render`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Access = Literal["read", "read-write"]

# The JupyterHub proxy's port on the hub VM: the load balancer forwards 443 here, and
# notebook servers and Dask schedulers call the hub and gateway APIs through it.
HUB_PORT = 8000
# The gateway's scheduler TLS proxy on the hub VM (dask-gateway routes it by SNI): the
# network load balancer forwards this port to it, untouched.
SCHEDULER_PORT = 8786


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

    key: str  # short and stable: used in resource, role and service account names
    grants: tuple[Grant, ...]  # sorted by storage name
    users: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class CloudSpec:
    """The fields `AwsSpec` and `GcpSpec` share: they mean the same on both clouds."""

    name: str
    region: str
    vpc_cidr: str
    egress: Literal["nat", "none"]
    state_bucket: str
    domain: str | None = None
    log_retention_days: int = 30
    alert_emails: tuple[str, ...] = ()
    budgets: tuple[BudgetSpec, ...] = ()
    buckets: tuple[BucketSpec, ...] = ()
    worker_access: tuple[WorkerAccess, ...] = ()

    @property
    def platform_labels(self) -> dict[str, str]:
        """Tags (AWS) or labels (GCP) that every taggable resource of the platform carries."""
        return {"platform": self.name, "managed-by": "graticule"}
SCHEDULER_PORT = 8786  # the gateway's scheduler TLS proxy on the hub VM; the scheduler load balancer forwards here

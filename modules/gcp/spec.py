"""What the GCP stack needs to know, as plain values.

`render.terraform_gcp.gcp_spec` fills these from the validated platform.yaml model, so
the constructs here stay free of `render` imports (layout rule: modules import nothing of
ours). Field names follow `modules.aws.spec` wherever the two clouds mean the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Access = Literal["read", "read-write"]

# The JupyterHub proxy's port on the hub VM: the load balancer forwards 443 here, and
# notebook servers and Dask schedulers call the hub and gateway APIs through it.
HUB_PORT = 8000


@dataclass(frozen=True)
class ProfileSpec:
    name: str
    machine_type: str
    spot: bool = False
    gpu_type: str | None = None  # a GCP accelerator type, e.g. nvidia-tesla-t4
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

    key: str  # short and stable: used in service account and resource names
    grants: tuple[Grant, ...]  # sorted by storage name
    users: tuple[str, ...]


@dataclass(frozen=True)
class GcpSpec:
    name: str
    project: str
    region: str
    vpc_cidr: str
    egress: Literal["nat", "none"]
    state_bucket: str
    hub_machine_type: str
    domain: str | None = None
    log_retention_days: int = 30
    alert_emails: tuple[str, ...] = ()
    profiles: tuple[ProfileSpec, ...] = ()
    budgets: tuple[BudgetSpec, ...] = ()
    buckets: tuple[BucketSpec, ...] = ()
    worker_access: tuple[WorkerAccess, ...] = ()

    @property
    def labels(self) -> dict[str, str]:
        """Applied to every labelable resource through the provider's default_labels."""
        return {"platform": self.name, "managed-by": "graticule"}

"""The contract between render and the gateway: what the gateway knows of platform.yaml.

`GatewaySpec` is built by `render.gateway_config` and written as `gateway/platform.json`;
the gateway (deploy/gateway/) parses that file once, with `GatewaySpec.from_json`, and
reads typed fields after. Adding a field here is the one place to change both sides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class DaskLimits:
    default_profile: str
    max_workers: int
    idle_timeout: int  # seconds
    max_lifetime: int  # seconds


@dataclass(frozen=True)
class ProfileSize:
    cpu: int
    memory: int  # bytes
    gpu: dict | None  # {"count", "type"}
    price_per_hour_usd: float  # what the usage ledger charges per scheduler/worker hour
    # A spot profile's price above is the spot estimate; a machine that got on-demand
    # capacity instead (spot refused) is charged this (None: the same price).
    on_demand_per_hour_usd: float | None = None


@dataclass(frozen=True)
class Grants:
    """What a user may use, resolved from their groups."""

    profiles: list[str]
    default_profile: str | None
    environments: list[str]
    admin: bool
    budget: str | None  # the budget that pays for their clusters


@dataclass(frozen=True)
class BudgetLimits:
    monthly_usd: float
    max_cores: int | None
    alerts: list[int]
    on_exhausted: str  # stop | block_new | warn


@dataclass(frozen=True)
class GatewaySpec:
    name: str
    target: str
    service_name: str  # the gateway's JupyterHub service
    backend_class: str
    dask: DaskLimits
    profiles: dict[str, ProfileSize]
    environments: list[str]
    users: dict[str, Grants]
    budgets: dict[str, BudgetLimits]
    alert_emails: list[str] = field(default_factory=list)

    def grants_of(self, username: str) -> Grants | None:
        return self.users.get(username)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["alerts"] = {"email": document.pop("alert_emails")}
        return document

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GatewaySpec:
        return cls(
            name=data["name"],
            target=data["target"],
            service_name=data["service_name"],
            backend_class=data["backend_class"],
            dask=DaskLimits(**data["dask"]),
            profiles={name: ProfileSize(**size) for name, size in data["profiles"].items()},
            environments=list(data["environments"]),
            users={name: Grants(**grants) for name, grants in data["users"].items()},
            budgets={name: BudgetLimits(**limits) for name, limits in data["budgets"].items()},
            alert_emails=list(data.get("alerts", {}).get("email", [])),
        )

"""dask-gateway configuration: `build/gateway/dask_gateway_config.py` + `platform.json`.

The config file is the same for every platform and target: it loads `platform.json`
beside it (everything platform.yaml decides: who may use which profile and environment,
the limits, the backend class) and takes what differs per machine (addresses, state
directory, the hub service token) from GRATICULE_* environment variables at start-up.
Nothing rendered here is a secret.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from render import cost, entitlements
from render.gateway_spec import BudgetLimits, DaskLimits, GatewaySpec, Grants, ProfileSize
from render.schema import Platform

SERVICE_NAME = "dask-gateway"

# The gateway backend per target. Cloud backends are implemented by a later issue;
# render only names them.
BACKEND_CLASSES = {
    "local": "deploy.gateway.local.LocalProcessBackend",
    "aws": "deploy.gateway.aws.AWSBackend",
    "gcp": "deploy.gateway.gcp.GCPBackend",
}


def render_gateway(platform: Platform, target: str | None = None) -> dict[str, bytes]:
    chosen = target or platform.target
    config = resources.files("render.templates").joinpath("dask_gateway_config.py.tmpl")
    return {
        "gateway/dask_gateway_config.py": config.read_bytes(),
        "gateway/platform.json": _json(gateway_platform(platform, chosen)),
    }


def gateway_platform(platform: Platform, target: str) -> dict[str, Any]:
    """What the gateway needs to know of platform.yaml, resolved per user (as JSON)."""
    return gateway_spec(platform, target).to_json()


def gateway_spec(platform: Platform, target: str) -> GatewaySpec:
    return GatewaySpec(
        name=platform.name,
        target=target,
        service_name=SERVICE_NAME,
        backend_class=BACKEND_CLASSES[target],
        dask=DaskLimits(
            default_profile=platform.dask.default_profile,
            max_workers=platform.dask.max_workers,
            idle_timeout=platform.dask.idle_timeout,
            max_lifetime=platform.dask.max_lifetime,
        ),
        profiles={
            name: ProfileSize(
                cpu=profile.cpu,
                memory=profile.memory,
                gpu=profile.gpu.model_dump() if profile.gpu else None,
                price_per_hour_usd=cost.profile_price(platform, target, name).price_per_hour_usd,
                on_demand_per_hour_usd=_on_demand(platform, target, name),
            )
            for name, profile in platform.profiles.items()
        },
        environments=list(platform.environments),
        users={user.name: _grants(platform, user) for user in platform.users},
        # enforced by the gateway (deploy.budgets); SMTP server for alerts from the environment
        budgets={
            name: BudgetLimits(budget.monthly_usd, budget.max_cores, list(budget.alerts), budget.on_exhausted)
            for name, budget in platform.budgets.items()
        },
        alert_emails=list(platform.integrations.alerts.email),
    )


def _on_demand(platform: Platform, target: str, name: str) -> float | None:
    """The on-demand hourly price of a spot profile (None for the others: their one price)."""
    if not platform.profiles[name].spot:
        return None
    price = cost.profile_price(platform, target, name)
    if platform.profiles[name].price_per_hour_usd is not None or price.on_demand_per_hour_usd is None:
        return price.price_per_hour_usd  # a price set in platform.yaml holds in either market
    return price.on_demand_per_hour_usd


def _grants(platform: Platform, user) -> Grants:
    return Grants(
        profiles=entitlements.profiles_of(platform, user),
        default_profile=entitlements.default_profile_for(platform, user, platform.dask.default_profile),
        environments=entitlements.environments_of(platform, user),
        admin=entitlements.is_admin(platform, user),
        budget=entitlements.budget_of(platform, user),
    )


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()

"""What one machine of a profile costs per hour (VM targets), from the rendered gateway spec."""

from __future__ import annotations

from render.gateway_spec import GatewaySpec


def machine_price(spec: GatewaySpec, profile: str, spot: bool) -> float:
    """Hourly price of one instance of `profile`: the profile's (spot estimate for a spot
    profile) when it runs on spot, the on-demand price when it does not."""
    size = spec.profiles.get(profile)
    if size is None:
        return 0.0
    if spot or size.on_demand_per_hour_usd is None:
        return float(size.price_per_hour_usd or 0.0)
    return float(size.on_demand_per_hour_usd)


__all__ = ["machine_price"]

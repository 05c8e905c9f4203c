"""`cost.json`: what the rendered platform costs while idle, and per hour per profile.

Prices come from the bundled, dated table (`render.prices`); a profile's
`price_per_hour_usd` overrides it. The fixed monthly part counts the billable pieces
actually present in the rendered Terraform JSON (NAT gateways, load balancers, interface
endpoints) plus the hub VM, so the figure follows the stack rather than a guess.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from modules.naming import HOME_VOLUME_GIB
from render import prices
from render.schema import CLOUD_TARGETS, Platform

NOT_INCLUDED = (
    "usage-priced items: worker and notebook VMs while running (see profiles), data transfer, "
    "NAT data processing, storage, logs, load balancer capacity units, disks (notebook homes: "
    "see notebook_homes)"
)
# Notebook homes by target: (what they are in cost.json, their price's key in the price table)
HOME_STORAGE = {"aws": ("ebs-gp3-per-user", "ebs_gp3_gb_monthly"),
                "gcp": ("pd-balanced-per-user", "pd_balanced_gb_monthly")}


@dataclass(frozen=True)
class ProfilePrice:
    price_per_hour_usd: float
    on_demand_per_hour_usd: float | None
    source: str


def region_of(platform: Platform, target: str) -> str | None:
    block = getattr(platform.cloud, target, None) if target in CLOUD_TARGETS else None
    return block.region if block else None


def profile_price(platform: Platform, target: str, name: str) -> ProfilePrice:
    """Hourly price of one worker/notebook of profile `name` on `target`."""
    profile = platform.profiles[name]
    on_demand = _table_hourly(platform, target, name)
    if profile.price_per_hour_usd is not None:
        return ProfilePrice(profile.price_per_hour_usd, on_demand, "price_per_hour_usd in platform.yaml")
    if target not in CLOUD_TARGETS:
        return ProfilePrice(0.0, None, "local target: no charge")
    if on_demand is None:
        # validation refuses this (render.checks); only a direct caller can get here
        raise LookupError(
            f"profile {name!r}: no known {target} price for {getattr(profile.instance, target)!r} "
            f"in {region_of(platform, target)} and no price_per_hour_usd"
        )
    if profile.spot:
        factor = prices.spot_factor(target)
        return ProfilePrice(round(on_demand * factor, 4), on_demand, f"price table, spot estimate (x{factor})")
    return ProfilePrice(on_demand, on_demand, "price table, on-demand")


def _table_hourly(platform: Platform, target: str, name: str) -> float | None:
    """On-demand hourly price from the table (GPUs added where the cloud bills them apart)."""
    if target not in CLOUD_TARGETS:
        return None
    profile = platform.profiles[name]
    region = region_of(platform, target) or ""
    hourly = prices.instance_hourly(target, region, getattr(profile.instance, target) or "")
    if hourly is not None and profile.gpu and prices.gpus_priced_separately(target):
        per_gpu = prices.accelerator_hourly(target, region, profile.gpu.type)
        hourly = None if per_gpu is None else hourly + per_gpu * profile.gpu.count
    return None if hourly is None else round(hourly, 4)


def render_cost(
    platform: Platform, target: str | None = None, terraform: Mapping[str, bytes] | None = None
) -> dict[str, bytes]:
    """{'cost.json': ...}. `terraform` is the rendered `terraform/...` files, when there are any."""
    target = target or platform.target
    region = region_of(platform, target)
    items, unpriced = _fixed_items(platform, target, region, _resources(terraform or {}))
    document = {
        "target": target,
        "region": region,
        "currency": "USD",
        "price_table_date": prices.date(),
        "hours_per_month": prices.hours_per_month(),
        "counted_from": sorted(path for path in (terraform or {}) if path.endswith(".tf.json")),
        "fixed_monthly": {
            "items": items,
            "total_usd": round(sum(item["monthly_usd"] for item in items.values() if item["monthly_usd"]), 2),
        },
        "profiles": {name: _profile_entry(platform, target, name) for name in platform.profiles},
        **({"notebook_homes": _notebook_homes(platform, target, region)} if target in HOME_STORAGE else {}),
        "unpriced": unpriced,
        "not_included": NOT_INCLUDED,
    }
    return {"cost.json": (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()}


def _notebook_homes(platform: Platform, target: str, region: str | None) -> dict:
    """Users' notebook homes: one block volume each (aws: a gp3 EBS volume, why in
    deploy.cloud.home_volumes; gcp: a pd-balanced persistent disk, deploy.cloud.gcp_home_disks),
    made at a user's first server and kept between servers, so billed whether a server runs
    or not; at most one per user of platform.yaml. Both bill the provisioned GiB."""
    storage, price_key = HOME_STORAGE[target]
    per_gb = (prices.region_prices(target, region or "") or {}).get(price_key)
    per_user = None if per_gb is None else round(per_gb * HOME_VOLUME_GIB, 2)
    return {
        "storage": storage,
        "size_gib": HOME_VOLUME_GIB,
        "per_gb_monthly_usd": per_gb,
        "per_user_monthly_usd": per_user,
        "users": len(platform.users),
        "monthly_usd_at_most": None if per_user is None else round(per_user * len(platform.users), 2),
    }


def _profile_entry(platform: Platform, target: str, name: str) -> dict:
    profile = platform.profiles[name]
    price = profile_price(platform, target, name)
    return {
        "instance_type": getattr(profile.instance, target) if target in CLOUD_TARGETS else None,
        "cpu": profile.cpu,
        "memory_bytes": profile.memory,
        "gpu": profile.gpu.model_dump() if profile.gpu else None,
        "spot": profile.spot,
        "price_per_hour_usd": price.price_per_hour_usd,
        "on_demand_per_hour_usd": price.on_demand_per_hour_usd,
        "source": price.source,
    }


def _fixed_items(platform: Platform, target: str, region: str | None, resources: dict[str, list[dict]]):
    """Item label -> {detail, count, unit and total monthly USD}; and what has no price."""
    if target not in CLOUD_TARGETS:
        return {}, []
    table = prices.region_prices(target, region or "") or {}
    items: dict[str, dict] = {}
    unpriced: list[str] = []
    hub_type = getattr(platform.hub.instance, target)
    hub_hourly = prices.instance_hourly(target, region or "", hub_type or "")
    if hub_hourly is None:
        unpriced.append(f"hub instance {hub_type} (not in the price table for {region})")
    items["hub instance"] = _item(hub_type, 1, hub_hourly and hub_hourly * prices.hours_per_month())
    counts = _billable_counts(target, resources, platform)
    for key, label in (
        ("nat_gateway", "NAT gateway"),
        ("load_balancer", "load balancer"),
        ("interface_endpoint", "interface endpoint (per zone)"),
        ("public_ipv4", "public IPv4 address"),
        ("kms_key", "KMS key"),
    ):
        if counts[key]:
            items[label] = _item(None, counts[key], table.get(f"{key}_monthly"))
    return items, unpriced


def _item(detail: str | None, count: int, unit_monthly: float | None) -> dict:
    return {
        "detail": detail,
        "count": count,
        "unit_monthly_usd": None if unit_monthly is None else round(unit_monthly, 2),
        "monthly_usd": None if unit_monthly is None else round(unit_monthly * count, 2),
    }


def _resources(terraform: Mapping[str, bytes]) -> dict[str, list[dict]]:
    """Resource type -> attribute blocks, over every rendered Terraform JSON file."""
    found: dict[str, list[dict]] = {}
    for path, payload in sorted(terraform.items()):
        if not path.endswith(".tf.json"):
            continue
        for kind, named in json.loads(payload).get("resource", {}).items():
            for _, attributes in sorted(named.items()):
                found.setdefault(kind, []).append(attributes)
    return found


def _instances(attributes: dict) -> int:
    """How many real resources one block makes (`count`, literal `for_each`), else 1."""
    count = attributes.get("count")
    if isinstance(count, int):
        return count
    for_each = attributes.get("for_each")
    if isinstance(for_each, dict | list):
        return len(for_each)
    return 1


def _billable_counts(target: str, resources: dict[str, list[dict]], platform: Platform) -> dict[str, int]:
    def total(*kinds: str) -> int:
        return sum(_instances(block) for kind in kinds for block in resources.get(kind, []))

    if target == "aws":
        zones = platform.cloud.aws.zones if platform.cloud.aws else 1
        endpoints = 0
        for block in resources.get("aws_vpc_endpoint", []):
            if block.get("vpc_endpoint_type") == "Interface":
                subnets = block.get("subnet_ids")
                per_zone = len(subnets) if isinstance(subnets, list) else zones
                endpoints += _instances(block) * per_zone
        return {
            "nat_gateway": total("aws_nat_gateway"),
            "load_balancer": total("aws_lb", "aws_alb"),
            "interface_endpoint": endpoints,
            "public_ipv4": total("aws_eip"),
            "kms_key": total("aws_kms_key"),
        }
    # gcp: Cloud NAT bills per VM behind it (only the hub is always there); the load
    # balancer's base charge covers up to five forwarding rules, so one charge per LB.
    rules = total("google_compute_global_forwarding_rule", "google_compute_forwarding_rule")
    return {
        "nat_gateway": total("google_compute_router_nat"),
        "load_balancer": 1 if rules else 0,
        "interface_endpoint": 0,
        "public_ipv4": 0,
        "kms_key": total("google_kms_crypto_key"),
    }

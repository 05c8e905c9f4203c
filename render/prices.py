"""The bundled, dated price table (render/data/prices.json) and lookups into it.

Shared by the cost renderer and the validation check that refuses an instance type with
no known price; both must agree on what "known" means, so the lookups live here.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def table() -> dict:
    return json.loads(resources.files("render.data").joinpath("prices.json").read_text("utf-8"))


def date() -> str:
    return table()["date"]


def hours_per_month() -> int:
    return table()["hours_per_month"]


def regions(cloud: str) -> list[str]:
    return sorted(table().get(cloud, {}).get("regions", {}))


def region_prices(cloud: str, region: str) -> dict | None:
    """The table's block for `cloud`/`region`, or None if the table does not cover it."""
    return table().get(cloud, {}).get("regions", {}).get(region)


def instance_hourly(cloud: str, region: str, instance_type: str) -> float | None:
    block = region_prices(cloud, region)
    return None if block is None else block["instances"].get(instance_type)


def accelerator_hourly(cloud: str, region: str, gpu_type: str) -> float | None:
    """Per-GPU hourly price (gcp attaches GPUs to machine types; aws types include them)."""
    block = region_prices(cloud, region)
    return None if block is None else block.get("accelerators", {}).get(gpu_type)


def spot_factor(cloud: str) -> float:
    return table()[cloud]["spot_price_factor"]


def gpus_priced_separately(cloud: str) -> bool:
    return cloud == "gcp"


def known_instances(cloud: str, region: str) -> list[str]:
    block = region_prices(cloud, region)
    return sorted(block["instances"]) if block else []

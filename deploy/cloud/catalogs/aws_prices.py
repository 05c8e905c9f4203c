"""AWS on-demand prices from the AWS Price List (Pricing) API, `GetProducts`, merged into
the aws section of the bundled price table (render/data/prices.json).

Only `aws.regions.<region>.instances` and the table's `date` change; the fixed monthly
items, the GCP section and `spot_price_factor` stay as they are. Spot prices move by the
hour and by zone, so the table keeps a planning factor rather than a snapshot of
DescribeSpotPriceHistory (see the README's catalog paragraph).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from deploy.errors import RuntimeFailure

# The Pricing API answers in us-east-1 (also eu-central-1, ap-south-1); any works for any region.
PRICING_REGION = "us-east-1"
# The table's prices have at most 4 decimals (a hundredth of a cent), as render/cost.py rounds.
PLACES = Decimal("0.0001")
PAGE_SIZE = 100  # GetProducts' MaxResults ceiling (service model: BoxedInteger max 100)
# One product per instance type and region: Linux, no licence, no SQL Server etc.,
# shared tenancy, the "Used" capacity row (not reservations' unused/allocated rows).
PRODUCT_FILTERS = {
    "operatingSystem": "Linux",
    "licenseModel": "No License required",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
}

PricingClient = Any


class BadPriceList(RuntimeFailure):
    """The Pricing API answered something this refresh cannot read."""


@dataclass
class Refresh:
    """What a refresh found: prices per region and type, and what it could not find."""

    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    missing: list[tuple[str, str]] = field(default_factory=list)


def filters_for(region: str) -> list[dict[str, str]]:
    terms = {"regionCode": region, **PRODUCT_FILTERS}
    return [{"Type": "TERM_MATCH", "Field": name, "Value": value} for name, value in terms.items()]


def region_prices(pricing: PricingClient, region: str, wanted: set[str]) -> dict[str, float]:
    """On-demand USD/hour of the `wanted` instance types in `region` (those the API lists)."""
    found: dict[str, float] = {}
    pages = pricing.get_paginator("get_products").paginate(
        ServiceCode="AmazonEC2", Filters=filters_for(region), FormatVersion="aws_v1", MaxResults=PAGE_SIZE
    )
    for page in pages:
        for item in page.get("PriceList", []):
            instance_type, hourly = parse_product(item, region)
            if instance_type not in wanted:
                continue
            if instance_type in found and found[instance_type] != hourly:
                raise BadPriceList(
                    f"Pricing API: two on-demand prices for {instance_type} in {region} "
                    f"({found[instance_type]} and {hourly}); the filters no longer single out one product"
                )
            found[instance_type] = hourly
    return found


def parse_product(item: str, region: str) -> tuple[str, float]:
    """(instance type, on-demand USD per hour) from one priceList JSON document."""
    try:
        document = json.loads(item)
        attributes = document["product"]["attributes"]
        instance_type = attributes["instanceType"]
        terms = document["terms"]["OnDemand"]
    except (TypeError, ValueError, KeyError) as exc:
        raise BadPriceList(f"Pricing API: a priceList item in {region} is not a product document ({exc!r})") from None
    if attributes.get("regionCode", region) != region:
        raise BadPriceList(f"Pricing API: asked for {region}, got {instance_type} in {attributes['regionCode']}")
    dimensions = [dimension for term in terms.values() for dimension in term.get("priceDimensions", {}).values()]
    hourly = [dimension for dimension in dimensions if dimension.get("unit") == "Hrs"]
    if len(hourly) != 1:
        raise BadPriceList(
            f"Pricing API: {instance_type} in {region} has {len(hourly)} hourly on-demand price dimensions, not 1"
        )
    usd = hourly[0].get("pricePerUnit", {}).get("USD")
    try:
        price = Decimal(usd).quantize(PLACES, ROUND_HALF_UP)
    except (TypeError, InvalidOperation):
        raise BadPriceList(f"Pricing API: {instance_type} in {region}: USD price {usd!r} is not a number") from None
    if not price.is_finite() or price <= 0:
        raise BadPriceList(f"Pricing API: {instance_type} in {region}: USD price {usd!r} is not a positive price")
    return instance_type, float(price)


def fetch(pricing: PricingClient, table: dict, add_types: Iterable[str] = ()) -> Refresh:
    """Prices for every aws region of `table`, for the types it lists there plus `add_types`."""
    result = Refresh()
    extra = set(add_types)
    for region, block in table["aws"]["regions"].items():
        wanted = set(block["instances"]) | extra
        found = region_prices(pricing, region, wanted)
        result.prices[region] = found
        result.missing.extend((region, name) for name in sorted(wanted - found.keys()))
    return result


def merged(table: dict, refresh: Refresh, date: str) -> dict:
    """`table` with the refreshed aws instance prices and `date`; key order kept, new types sorted in.

    A type the refresh did not find keeps its old price (the caller decides whether that is allowed)."""
    fresh = copy.deepcopy(table)
    fresh["date"] = date
    for region, found in refresh.prices.items():
        block = fresh["aws"]["regions"][region]
        instances = {**block["instances"], **found}
        block["instances"] = {name: instances[name] for name in sorted(instances)}
    return fresh


def encode(table: dict) -> str:
    """The file's own layout (two-space JSON, trailing newline), so a refresh is a small diff."""
    return json.dumps(table, indent=2) + "\n"


def fetch_from_api(table: dict, add_types: Iterable[str] = (), endpoint_url: str | None = None) -> Refresh:
    """`fetch` with boto3's default credentials (the `[aws]` extra); needs pricing:GetProducts."""
    import boto3
    import botocore.exceptions

    pricing = boto3.session.Session().client("pricing", region_name=PRICING_REGION, endpoint_url=endpoint_url)
    try:
        return fetch(pricing, table, add_types)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise RuntimeFailure(f"Pricing API: {exc}") from None

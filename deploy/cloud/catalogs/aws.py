"""The AWS catalog from EC2's own API: DescribeRegions, DescribeAvailabilityZones,
DescribeInstanceTypeOfferings (per zone, every region) and DescribeInstanceTypes.

Prices stay in render/data/prices.json; this refresh is about what exists and where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from deploy.errors import RuntimeFailure
from render.catalog import Catalog, Machine, normalise_gpu

SOURCE = "AWS EC2 API: DescribeInstanceTypes, DescribeInstanceTypeOfferings, DescribeAvailabilityZones"
ABOUT = [
    "Every EC2 instance type offered in at least one availability zone of a listed region.",
    "Row: vcpus (default), memory in MiB, architecture, GPUs (count), normalised GPU model, spot market (1/0), "
    "bit mask over `regions` of the regions offering the type.",
    "A region's `zones` are its availability zones (no local or wavelength zones).",
]
DESCRIBE_BATCH = 100  # DescribeInstanceTypes takes at most 100 names per call

Ec2Client = Any
ClientFor = Callable[[str], Ec2Client]


def fetch(client_for: ClientFor, home_region: str, date: str, regions: Iterable[str] | None = None) -> Catalog:
    """Walk every region (or `regions`) with EC2 clients from `client_for(region)`."""
    names = sorted(regions or _enabled_regions(client_for(home_region)))
    zones: dict[str, tuple[str, ...]] = {}
    offered: dict[str, set[str]] = {}
    described: dict[str, dict] = {}
    for region in names:
        ec2 = client_for(region)
        here = _offerings(ec2)
        if not here:  # an opt-in region not enabled for this account: nothing can run there
            continue
        zones[region] = _zones(ec2)
        for instance_type in here:
            offered.setdefault(instance_type, set()).add(region)
        missing = sorted(here - described.keys())
        for start in range(0, len(missing), DESCRIBE_BATCH):
            for info in ec2.describe_instance_types(InstanceTypes=missing[start : start + DESCRIBE_BATCH])[
                "InstanceTypes"
            ]:
                described[info["InstanceType"]] = info
    machines = {name: machine(info, offered.get(name, set())) for name, info in described.items()}
    return Catalog("aws", date, SOURCE, zones, machines, {})


def machine(info: dict, regions: set[str]) -> Machine:
    """One DescribeInstanceTypes entry as a catalog row."""
    gpus = info.get("GpuInfo", {}).get("Gpus", [])
    model = ""
    if gpus:
        first = gpus[0]
        model = normalise_gpu(f"{first.get('Manufacturer', '')} {first.get('Name', '')}")
        if model == "nvidia-a100" and first.get("MemoryInfo", {}).get("SizeInMiB", 0) >= 80 * 1024:
            model = "nvidia-a100-80gb"
    architectures = info.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
    return Machine(
        name=info["InstanceType"],
        vcpus=int(info["VCpuInfo"]["DefaultVCpus"]),
        memory_mib=int(info["MemoryInfo"]["SizeInMiB"]),
        arch="arm64" if "arm64" in architectures or "arm64_mac" in architectures else "x86_64",
        gpus=sum(int(gpu.get("Count", 0)) for gpu in gpus),
        gpu_model=model,
        spot="spot" in info.get("SupportedUsageClasses", []),
        regions=frozenset(regions),
    )


def _enabled_regions(ec2: Ec2Client) -> list[str]:
    return [region["RegionName"] for region in ec2.describe_regions()["Regions"]]


def _zones(ec2: Ec2Client) -> tuple[str, ...]:
    found = ec2.describe_availability_zones(Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}])
    return tuple(sorted(zone["ZoneName"] for zone in found["AvailabilityZones"]))


def _offerings(ec2: Ec2Client) -> set[str]:
    found: set[str] = set()
    pages = ec2.get_paginator("describe_instance_type_offerings").paginate(LocationType="availability-zone")
    for page in pages:
        found.update(offering["InstanceType"] for offering in page["InstanceTypeOfferings"])
    return found


def fetch_from_api(date: str, regions: Iterable[str] | None = None, endpoint_url: str | None = None) -> Catalog:
    """`fetch` with boto3's default credentials (the `[aws]` extra)."""
    import boto3
    import botocore.exceptions

    session = boto3.session.Session()
    home = session.region_name or "us-east-1"

    def client_for(region: str):
        return session.client("ec2", region_name=region, endpoint_url=endpoint_url)

    try:
        return fetch(client_for, home, date, regions)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise RuntimeFailure(f"EC2 API: {exc}") from None

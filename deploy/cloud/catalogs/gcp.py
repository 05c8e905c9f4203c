"""The GCP catalog from Compute Engine's own API (google-cloud-compute): regions and
zones, `machine_types.aggregated_list` and `accelerator_types.aggregated_list`; or, for
maintainers without API access, from `gcloud compute ... list` CSV exports in the format of
`machinetyperegion.csv` / `acceleratortyperegion.csv` / `regions.csv` / `zones.csv`
(NAME;CPUS;SHARED_CPU;MEMORY_GB;DEPRECATED;ZONE and NAME;ZONE, with ZONE holding a region).

What the API does not say is kept here, from Google's documentation: which families can
have GPUs attached (N1 only: T4, P4, P100, V100), which families have a Spot market,
which are Arm, and (for CSV exports, which lack the field) the GPUs built into a2, a3, a4,
g2 and g4 machine types.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

from deploy.errors import RuntimeFailure
from render.catalog import Accelerator, Catalog, Machine, normalise_gpu

SOURCE_API = "Compute Engine API: regions.list, machineTypes.aggregatedList, acceleratorTypes.aggregatedList"
ABOUT = [
    "Every Compute Engine machine type offered in at least one zone of a listed region (TPU hosts left out).",
    "Row: vcpus, memory in MiB, architecture, built-in GPUs (count), normalised GPU model, Spot market (1/0), "
    "bit mask over `regions` of the regions offering the type.",
    "`accelerators` are GPUs attached to a machine type (N1 only) with the counts a VM may have.",
    "Spot markets and Arm families from Compute Engine's documentation and billing SKUs (Spot Preemptible ...).",
    "`zones` as listed by the zones export or regions.list; a region may list none (no rule needs GCP zones).",
]
# Families with Spot (billing SKUs 'Spot Preemptible <family> Instance'); x4, h4d, a4x have none.
SPOT_FAMILIES = frozenset(
    [
        "a2",
        "a3",
        "a4",
        "c2",
        "c2d",
        "c3",
        "c3d",
        "c4",
        "c4a",
        "c4d",
        "c4n",
        "e2",
        "f1",
        "g1",
        "g2",
        "g4",
        "h3",
        "m1",
        "m2",
        "m3",
        "m4",
        "m4n",
        "n1",
        "n2",
        "n2d",
        "n4",
        "n4a",
        "n4d",
        "t2a",
        "t2d",
        "z3",
    ]
)
ARM_FAMILIES = frozenset({"t2a", "c4a", "n4a", "a4x"})
# GPUs that attach to a machine type (guest accelerators) and the families that take them.
ATTACHABLE = {
    "nvidia-tesla-t4": (("n1",), 4),
    "nvidia-tesla-p4": (("n1",), 4),
    "nvidia-tesla-p100": (("n1",), 4),
    "nvidia-tesla-v100": (("n1",), 8),
}
SKIPPED_FAMILIES = ("ct", "tpu")  # TPU hosts: not workers the gateway can launch
_BUILT_IN = (  # (machine type pattern, accelerator type, count or None = from the -<N>g suffix)
    (r"^a2-(highgpu|megagpu)-", "nvidia-tesla-a100", None),
    (r"^a2-ultragpu-", "nvidia-a100-80gb", None),
    (r"^a3-megagpu-", "nvidia-h100-mega-80gb", None),
    (r"^a3-ultragpu-", "nvidia-h200-141gb", None),
    (r"^a3-", "nvidia-h100-80gb", None),
    (r"^a4-", "nvidia-b200", None),
    (r"^a4x-", "nvidia-gb200", None),
)
_G2_GPUS = {4: 1, 8: 1, 12: 1, 16: 1, 32: 1, 24: 2, 48: 4, 96: 8}
_G4_GPUS = {48: 1, 96: 2, 192: 4, 384: 8}  # smaller g4 shapes get a fraction of one GPU


@dataclass(frozen=True)
class Offer:
    """One machine type in one region, as the API or a CSV export reports it."""

    name: str
    vcpus: int
    memory_mib: int
    region: str
    accelerator: str = ""  # built-in GPU, API name
    accelerator_count: int = 0


def built_in_gpus(name: str) -> tuple[str, int]:
    """The GPUs built into a machine type, by its name (CSV exports lack the field)."""
    for pattern, accelerator, _ in _BUILT_IN:
        if re.match(pattern, name):
            found = re.search(r"-(\d+)g(-|$)", name)
            return accelerator, int(found.group(1)) if found else 0
    size = re.match(r"^(g2|g4)-standard-(\d+)$", name)
    if size:
        table = _G2_GPUS if size.group(1) == "g2" else _G4_GPUS
        model = "nvidia-l4" if size.group(1) == "g2" else "nvidia-rtx-pro-6000"
        return model, table.get(int(size.group(2)), 0)
    return "", 0


def build(
    offers: Iterable[Offer],
    accelerators: dict[str, set[str]],
    zones: dict[str, tuple[str, ...]],
    date: str,
    source: str,
    max_cards: dict[str, int] | None = None,
) -> Catalog:
    """A Catalog from offers, {accelerator API name: regions} and {region: zones}."""
    regions: dict[str, set[str]] = {}
    shapes: dict[str, Offer] = {}
    for offer in offers:
        if offer.name.startswith(SKIPPED_FAMILIES):
            continue
        regions.setdefault(offer.name, set()).add(offer.region)
        shapes.setdefault(offer.name, offer)
    machines = {}
    for name, offer in shapes.items():
        family = name.split("-")[0]
        machines[name] = Machine(
            name=name,
            vcpus=offer.vcpus,
            memory_mib=offer.memory_mib,
            arch="arm64" if family in ARM_FAMILIES else "x86_64",
            gpus=offer.accelerator_count,
            gpu_model=normalise_gpu(offer.accelerator) if offer.accelerator else "",
            spot=family in SPOT_FAMILIES,
            regions=frozenset(regions[name]),
        )
    attachable = {}
    for api_name, (families, default_max) in ATTACHABLE.items():
        if api_name not in accelerators:
            continue
        most = (max_cards or {}).get(api_name, default_max)
        counts = tuple(count for count in (1, 2, 4, 8, 16) if count <= most)
        name = normalise_gpu(api_name)
        attachable[name] = Accelerator(name, api_name, families, counts, frozenset(accelerators[api_name]))
    every_region = {region for offered in regions.values() for region in offered} | set(zones)
    return Catalog("gcp", date, source, {r: zones.get(r, ()) for r in every_region}, machines, attachable)


def from_csv_exports(
    machine_types: str, accelerator_types: str, regions: str, zones: str, date: str, source: str
) -> Catalog:
    """A Catalog from the text of gcloud CSV exports (see the module docstring)."""
    up = {row["NAME"] for row in _rows(regions) if row.get("STATUS", "UP") == "UP"}
    region_zones: dict[str, list[str]] = {region: [] for region in up}
    for row in _rows(zones):
        if row["REGION"] in region_zones and row.get("STATUS", "UP") == "UP":
            region_zones[row["REGION"]].append(row["NAME"])
    offers = []
    for row in _rows(machine_types):
        if row["ZONE"] not in up or row.get("DEPRECATED"):
            continue
        accelerator, count = built_in_gpus(row["NAME"])
        memory = round(float(row["MEMORY_GB"]) * 1024)
        offers.append(Offer(row["NAME"], int(row["CPUS"]), memory, row["ZONE"], accelerator, count))
    accelerators: dict[str, set[str]] = {}
    for row in _rows(accelerator_types):
        if row["ZONE"] in up:
            accelerators.setdefault(row["NAME"], set()).add(row["ZONE"])
    frozen_zones = {region: tuple(sorted(names)) for region, names in region_zones.items()}
    return build(offers, accelerators, frozen_zones, date, source)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter=";"))


def fetch(project: str, date: str, client_options: dict | None = None, credentials=None) -> Catalog:
    """Walk the Compute API of `project` (read-only calls)."""
    from google.cloud import compute_v1

    kwargs = {"client_options": client_options, "credentials": credentials, "transport": "rest"}
    zones: dict[str, list[str]] = {}
    for region in compute_v1.RegionsClient(**kwargs).list(project=project):
        if region.status == "UP":
            zones[region.name] = sorted(url.rsplit("/", 1)[-1] for url in region.zones)
    region_of = {zone: region for region, names in zones.items() for zone in names}
    offers = []
    machine_types = compute_v1.MachineTypesClient(**kwargs).aggregated_list(project=project)
    for scope, scoped in machine_types:
        region = region_of.get(scope.rsplit("/", 1)[-1])
        for kind in scoped.machine_types if region else ():
            if kind.deprecated and kind.deprecated.state:
                continue
            built_in = kind.accelerators[0] if kind.accelerators else None
            offers.append(
                Offer(
                    kind.name,
                    kind.guest_cpus,
                    kind.memory_mb,
                    region,
                    built_in.guest_accelerator_type if built_in else "",
                    built_in.guest_accelerator_count if built_in else 0,
                )
            )
    accelerators: dict[str, set[str]] = {}
    max_cards: dict[str, int] = {}
    for scope, scoped in compute_v1.AcceleratorTypesClient(**kwargs).aggregated_list(project=project):
        region = region_of.get(scope.rsplit("/", 1)[-1])
        for kind in scoped.accelerator_types if region else ():
            accelerators.setdefault(kind.name, set()).add(region)
            max_cards[kind.name] = max(max_cards.get(kind.name, 0), kind.maximum_cards_per_instance)
    frozen = {region: tuple(names) for region, names in zones.items()}
    return build(offers, accelerators, frozen, date, SOURCE_API, max_cards)


def fetch_from_api(project: str, date: str) -> Catalog:
    """`fetch`, with the Compute API's errors as one line (the `[gcp]` extra)."""
    from google.api_core import exceptions

    try:
        return fetch(project, date)
    except exceptions.GoogleAPIError as exc:
        raise RuntimeFailure(f"Compute API: {exc}") from None

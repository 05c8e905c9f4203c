"""The bundled, dated machine catalogs (render/data/catalog_<cloud>.json) and lookups.

What each cloud offers, offline: every machine type with its vCPUs, memory, architecture,
built-in GPUs and spot market, the regions (and their zones) that offer it, and on GCP the
accelerators that can be attached to a machine type. `platform catalog refresh`
rewrites the files from the clouds' own APIs; `encode` is the one writer of the format,
`load` the one reader. Regions are stored once per file and each type carries a bit mask
of the regions offering it, so a file stays small and loads in a few milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

CLOUDS = ("aws", "gcp")
# Field order of one machine row in the data files.
FIELDS = ("vcpus", "memory_mib", "arch", "gpus", "gpu_model", "spot", "regions")


@dataclass(frozen=True)
class Machine:
    name: str
    vcpus: int
    memory_mib: int
    arch: str  # x86_64 | arm64
    gpus: int  # built into the type (aws: all of them; gcp: a2, a3, a4, g2, g4)
    gpu_model: str  # normalised, e.g. nvidia-t4; "" without GPUs
    spot: bool
    regions: frozenset[str]


@dataclass(frozen=True)
class Accelerator:
    """A GPU that is attached to a machine type rather than built in (gcp)."""

    name: str  # normalised, e.g. nvidia-t4
    api_name: str  # what the cloud's API calls it, e.g. nvidia-tesla-t4
    families: tuple[str, ...]  # machine families it attaches to, e.g. ("n1",)
    counts: tuple[int, ...]  # allowed numbers per VM
    regions: frozenset[str]


class Catalog:
    """One cloud's catalog. Machine rows are decoded on lookup: a validation looks up a
    handful of the ~1,000 types, so decoding them all up front would be wasted time."""

    def __init__(
        self,
        cloud: str,
        date: str,
        source: str,
        zones: Mapping[str, tuple[str, ...]],
        machines: Mapping[str, Machine] | Mapping[str, list],
        accelerators: Mapping[str, Accelerator],
    ) -> None:
        self.cloud, self.date, self.source = cloud, date, source
        self.zones = dict(zones)
        self.regions = sorted(self.zones)
        self.accelerators = dict(accelerators)
        self._rows = dict(machines)

    def names(self) -> list[str]:
        return sorted(self._rows)

    def machine(self, name: str) -> Machine | None:
        row = self._rows.get(name)
        if row is None or isinstance(row, Machine):
            return row
        vcpus, memory, arch, gpus, model, spot, mask = row
        machine = Machine(name, vcpus, memory, arch, gpus, model, bool(spot), _unmask(mask, self.regions))
        self._rows[name] = machine
        return machine

    def machines(self) -> list[Machine]:
        return [machine for name in self.names() if (machine := self.machine(name))]


def normalise_gpu(name: str) -> str:
    """'NVIDIA Tesla T4', 'nvidia-tesla-t4' -> 'nvidia-t4'."""
    words = name.lower().replace("_", " ").replace("-", " ").split()
    return "-".join(word for word in words if word != "tesla")


# What a memory suffix or variant may add to a GPU's name and still be the same chip.
_GPU_VARIANTS = ("80gb", "141gb", "mega-80gb")


def same_gpu(asked: str, model: str) -> bool:
    """Whether a profile's `gpu.type` names `model` ('nvidia-h100' names nvidia-h100-80gb)."""
    name = normalise_gpu(asked)
    return name == model or any(model == f"{name}-{variant}" for variant in _GPU_VARIANTS)


def _mask(regions: Iterable[str], order: list[str]) -> int:
    index = {region: position for position, region in enumerate(order)}
    return sum(1 << index[region] for region in set(regions))


def _unmask(mask: int, order: list[str]) -> frozenset[str]:
    return frozenset(region for position, region in enumerate(order) if mask >> position & 1)


def encode(catalog: Catalog, about: list[str]) -> bytes:
    """The data file for `catalog`: sorted, one machine per line, so refreshes diff well."""
    order = catalog.regions
    machines = {
        m.name: [m.vcpus, m.memory_mib, m.arch, m.gpus, m.gpu_model, int(m.spot), _mask(m.regions, order)]
        for m in catalog.machines()
    }
    accelerators = {
        name: {
            "api_name": a.api_name,
            "families": list(a.families),
            "counts": list(a.counts),
            "regions": _mask(a.regions, order),
        }
        for name, a in sorted(catalog.accelerators.items())
    }
    head = {
        "cloud": catalog.cloud,
        "date": catalog.date,
        "source": catalog.source,
        "about": about,
        "fields": list(FIELDS),
        "regions": order,
        "zones": {region: list(catalog.zones[region]) for region in order},
        "accelerators": accelerators,
    }
    lines = [json.dumps(head, indent=1, sort_keys=True)[:-2] + ',\n "machines": {']
    rows = [f"  {json.dumps(name)}: {json.dumps(row)}" for name, row in machines.items()]
    lines.append(",\n".join(rows))
    lines.append(" }\n}\n")
    return "\n".join(lines).encode()


def decode(text: str | bytes) -> Catalog:
    data = json.loads(text)
    order = data["regions"]
    if data["fields"] != list(FIELDS):
        raise ValueError(f"catalog fields {data['fields']} are not {list(FIELDS)}")
    accelerators = {
        name: Accelerator(name, a["api_name"], tuple(a["families"]), tuple(a["counts"]), _unmask(a["regions"], order))
        for name, a in data["accelerators"].items()
    }
    zones = {region: tuple(data["zones"].get(region, ())) for region in order}
    return Catalog(data["cloud"], data["date"], data["source"], zones, data["machines"], accelerators)


@cache
def load(cloud: str) -> Catalog:
    """The bundled catalog of `cloud` (read once per process)."""
    return decode(resources.files("render.data").joinpath(f"catalog_{cloud}.json").read_bytes())


def family(cloud: str, machine_type: str) -> str:
    """'m6i.large' -> 'm6i'; 'n2-highmem-8' -> 'n2'."""
    return machine_type.split("." if cloud == "aws" else "-")[0]

"""What `terraform apply` would otherwise fail on, checked offline against the bundled
machine catalogs (render.catalog): regions, zones, machine types and what they can give.

Every instance type named for a cloud must exist there and be offered in that cloud's
region (a typo is wrong whether or not that cloud is the target today). What a type must
*give* (vCPUs, memory, GPUs, a spot market, room for the hub) is checked for the target
cloud only: it is what will run. A profile may ask for less than its type has, never more.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from render import catalog as catalogs
from render import units
from render.catalog import Catalog, Machine
from render.findings import Finding, mapping, suggest

MIB = 1024**2
GIB = 1024**3
# The hub VM runs JupyterHub, its proxy, the dask-gateway server and the usage ledger.
HUB_MIN_VCPUS = 2
HUB_MIN_MEMORY_GIB = 4
REGIONS_LISTED = 6  # "offered in ..." lists this many regions, then "and N more"
MEMORY_UNIT_SLIP = GIB / 1000**3  # 1.074: how far "GB" read as "GiB" overshoots


def check(root: dict) -> Iterator[Finding]:
    target = root.get("target", "local")
    clouds = mapping(root.get("cloud"))
    for cloud in catalogs.CLOUDS:
        catalog = catalogs.load(cloud)
        block = mapping(clouds.get(cloud))
        region = block.get("region") if isinstance(block.get("region"), str) else None
        if region is not None and region not in catalog.zones:
            yield _unknown_region(catalog, region)
            region = None
        if region is not None:
            yield from _check_zones(catalog, block, region)
        for path, entry in _instance_entries(root):
            kind = mapping(entry.get("instance")).get(cloud)
            if not isinstance(kind, str):
                continue
            where = (*path, "instance", cloud)
            machine = catalog.machine(kind)
            if machine is None:
                yield Finding(where, _unknown_type(catalog, kind))
                continue
            if region is not None and region not in machine.regions:
                yield Finding(where, _not_in_region(catalog, machine, region))
            if cloud == target and path == ("hub",):
                yield from _check_hub(catalog, machine, region)
            elif cloud == target:
                yield from _check_fit(catalog, machine, path, entry, region)


def offered(cloud: str, kind: object, region: str) -> bool:
    """Whether `kind` exists and is offered in `region` (else this module reports it)."""
    machine = catalogs.load(cloud).machine(kind) if isinstance(kind, str) else None
    return machine is not None and region in machine.regions


def known_region(cloud: str, region: object) -> bool:
    return isinstance(region, str) and region in catalogs.load(cloud).zones


def _instance_entries(root: dict) -> Iterator[tuple[tuple, dict]]:
    yield ("hub",), mapping(root.get("hub"))
    for name, profile in mapping(root.get("profiles")).items():
        yield ("profiles", name), mapping(profile)


def _unknown_region(catalog: Catalog, region: str) -> Finding:
    return Finding(
        ("cloud", catalog.cloud, "region"),
        f"unknown {catalog.cloud} region {region!r}{suggest(region, catalog.regions)}; "
        f"the catalog of {catalog.date} has: {', '.join(catalog.regions)}",
    )


def _check_zones(catalog: Catalog, block: dict, region: str) -> Iterator[Finding]:
    zones = block.get("zones")
    available = catalog.zones[region]
    if isinstance(zones, int) and not isinstance(zones, bool) and available and zones > len(available):
        yield Finding(
            ("cloud", catalog.cloud, "zones"),
            f"{region} has {len(available)} availability zones ({', '.join(available)}); "
            f"zones: {zones} cannot be spread over more (did you mean {len(available)}?)",
        )


def _unknown_type(catalog: Catalog, kind: str) -> str:
    return (
        f"unknown {catalog.cloud} machine type {kind!r}{suggest(kind, _near_names(catalog, kind))} "
        f"(catalog of {catalog.date})"
    )


def _near_names(catalog: Catalog, kind: str) -> list[str]:
    """Candidates for "did you mean": the same family first (cheap), else every name."""
    names = catalog.names()
    same_family = [
        name for name in names if catalogs.family(catalog.cloud, name) == catalogs.family(catalog.cloud, kind)
    ]
    return same_family if difflib.get_close_matches(kind, same_family, n=1, cutoff=0.6) else names


def _not_in_region(catalog: Catalog, machine: Machine, region: str) -> str:
    regions = sorted(machine.regions)
    listed = ", ".join(regions[:REGIONS_LISTED]) + (
        f" and {len(regions) - REGIONS_LISTED} more" if len(regions) > REGIONS_LISTED else ""
    )
    alternative = _alternative(catalog, machine, machine.vcpus, machine.memory_mib * MIB, region)
    hint = f" (did you mean {alternative.name!r}?)" if alternative else ""
    return (
        f"{catalog.cloud} machine type {machine.name!r} is not offered in {region}{hint}; "
        f"it is offered in {listed or 'no region'} (catalog of {catalog.date})"
    )


def _alternative(catalog: Catalog, machine: Machine, cpu: int, memory: int, region: str | None) -> Machine | None:
    """The smallest type of the same series that gives `cpu` and `memory` (and the same
    GPUs) in `region`: what the user most likely meant."""
    series = _series(catalog.cloud, machine.name)
    fits = [
        other
        for name in catalog.names()
        if _series(catalog.cloud, name) == series
        and (other := catalog.machine(name)) is not None
        and other.vcpus >= cpu
        and other.memory_mib * MIB >= memory
        and other.gpu_model == machine.gpu_model
        and (region is None or region in other.regions)
    ]
    return min(fits, key=lambda other: (other.vcpus, other.memory_mib, other.name), default=None)


def _series(cloud: str, name: str) -> str:
    """'m6i.large' -> 'm6i'; 'n2-highmem-8' -> 'n2-highmem'."""
    return name.split(".")[0] if cloud == "aws" else name.rsplit("-", 1)[0]


def _memory(value: object) -> int | None:
    try:
        return units.parse_memory(value)
    except ValueError:
        return None  # pydantic reports it


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_fit(catalog: Catalog, machine: Machine, path: tuple, entry: dict, region: str | None) -> Iterator[Finding]:
    cpu, memory = _count(entry.get("cpu")), _memory(entry.get("memory"))
    too_many_cpus = cpu is not None and cpu > machine.vcpus
    too_much_memory = memory is not None and memory > machine.memory_mib * MIB
    hint = ""
    if too_many_cpus or too_much_memory:  # the search walks the catalog: only for a finding
        bigger = _alternative(catalog, machine, cpu or 0, memory or 0, region)
        hint = f" (did you mean {bigger.name!r}?)" if bigger else ""
    rule = "a profile may ask for less than its machine type has, never more"
    if too_many_cpus:
        yield Finding(
            (*path, "cpu"), f"cpu: {cpu} is more than {machine.name} has ({machine.vcpus} vCPUs){hint}; {rule}"
        )
    if too_much_memory:
        # Within a GB/GiB slip (price sheets say "30 GB" for 30 GiB) it is most likely a unit
        # mix-up, not a wrong type: a warning. Past it, the type cannot give what is asked.
        slip = memory <= machine.memory_mib * MIB * MEMORY_UNIT_SLIP
        yield Finding(
            (*path, "memory"),
            f"memory: {units.format_memory(memory)} is more than {machine.name} has "
            f"({units.format_memory(machine.memory_mib * MIB)}){hint}; {rule}"
            + ("; workers would be killed for memory before Dask can spill" if slip else ""),
            severity="warning" if slip else "error",
        )
    gpu = entry.get("gpu")
    if isinstance(gpu, dict):
        yield from _check_gpu(catalog, machine, path, gpu, region)
    if entry.get("spot") is True and not machine.spot:
        yield Finding(
            (*path, "spot"),
            f"{machine.name} has no spot market on {catalog.cloud}: workers would start on-demand or not at all; "
            "use `spot: false` or a type with spot capacity",
            severity="warning",
        )


def _check_gpu(catalog: Catalog, machine: Machine, path: tuple, gpu: dict, region: str | None) -> Iterator[Finding]:
    asked, count = gpu.get("type"), _count(gpu.get("count"))
    if not isinstance(asked, str):
        return
    if machine.gpu_model:
        if not catalogs.same_gpu(asked, machine.gpu_model):
            yield Finding(
                (*path, "gpu", "type"),
                f"{machine.name} has {machine.gpu_model} GPUs, not {asked!r} (did you mean '{machine.gpu_model}'?)",
            )
        elif count is not None and count > machine.gpus:
            yield Finding(
                (*path, "gpu", "count"),
                f"gpu count {count} is more than {machine.name} has ({machine.gpus} x {machine.gpu_model})",
            )
        return
    accelerator = catalog.accelerators.get(catalogs.normalise_gpu(asked))
    if accelerator is None:
        with_it = _types_with_gpu(catalog, asked, region)
        listed = ", ".join(with_it)
        if catalog.accelerators:  # a cloud that attaches GPUs, just not this one
            hint = f"; it comes built into {listed}" if listed else suggest(asked, _gpu_names(catalog))
            message = f"{asked!r} cannot be attached to {machine.name}{hint}"
        else:
            hint = f"; types with {asked}: {listed}" if listed else suggest(asked, _gpu_names(catalog))
            message = f"{machine.name} has no GPUs{hint}"
        yield Finding((*path, "gpu"), message)
    elif catalogs.family(catalog.cloud, machine.name) not in accelerator.families:
        families = ", ".join(f"{name}-*" for name in accelerator.families)
        yield Finding(
            (*path, "gpu", "type"),
            f"{asked} attaches only to {families} machine types, not {machine.name}",
        )
    elif count is not None and count not in accelerator.counts:
        yield Finding(
            (*path, "gpu", "count"),
            f"a VM takes {', '.join(map(str, accelerator.counts))} x {accelerator.name}, not {count}",
        )
    elif region is not None and region not in accelerator.regions:
        yield Finding(
            (*path, "gpu", "type"),
            f"{accelerator.api_name} is not offered in {region} (catalog of {catalog.date})",
        )


def _types_with_gpu(catalog: Catalog, asked: str, region: str | None) -> list[str]:
    found = [
        machine
        for name in catalog.names()
        if (machine := catalog.machine(name)) is not None
        and machine.gpus
        and catalogs.same_gpu(asked, machine.gpu_model)
        and (region is None or region in machine.regions)
    ]
    return [machine.name for machine in sorted(found, key=lambda m: (m.gpus, m.vcpus, m.name))[:4]]


def _gpu_names(catalog: Catalog) -> list[str]:
    models = {machine.gpu_model for machine in catalog.machines() if machine.gpu_model}
    return sorted(models | set(catalog.accelerators))


def _check_hub(catalog: Catalog, machine: Machine, region: str | None) -> Iterator[Finding]:
    if machine.vcpus >= HUB_MIN_VCPUS and machine.memory_mib * MIB >= HUB_MIN_MEMORY_GIB * GIB:
        return
    bigger = _alternative(catalog, machine, HUB_MIN_VCPUS, HUB_MIN_MEMORY_GIB * GIB, region)
    hint = f" (did you mean {bigger.name!r}?)" if bigger else ""
    yield Finding(
        ("hub", "instance", catalog.cloud),
        f"{machine.name} ({machine.vcpus} vCPUs, {units.format_memory(machine.memory_mib * MIB)}) is too small "
        f"for the hub, which runs JupyterHub, its proxy, the dask-gateway server and the usage ledger: "
        f"it needs at least {HUB_MIN_VCPUS} vCPUs and {HUB_MIN_MEMORY_GIB}GiB{hint}",
        severity="warning",
    )

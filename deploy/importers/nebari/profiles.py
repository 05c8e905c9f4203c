"""Nebari's notebook profiles and Dask worker sizes -> graticule hardware profiles.

Sizes come from the limits (guarantees are dropped: a VM's size is both); the machine
type is the smallest of the profile's node group that fits it; GPUs from the
`nvidia.com/gpu` limit, their model from the node group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deploy.importers.nebari import defaults, machines, sizes
from deploy.importers.nebari.names import slug
from deploy.importers.nebari.nodegroups import NodeGroup, group_of
from deploy.importers.nebari.report import Report
from deploy.importers.nebari.source import Source
from render import prices
from render.errors import dotted

GPU_LIMIT = "nvidia.com/gpu"
GUARANTEE = "guarantees are dropped: a VM of the profile's size is both the guarantee and the limit"
IMAGE = "container images do not exist here: environments are uv package specs built on the VM"


@dataclass
class Placement:
    """Where profiles run: the target, the Nebari cloud they came from, its node groups."""

    target: str
    source_cloud: str | None  # aws | gcp when the Nebari provider has instance types
    region: str | None
    groups: dict[str, NodeGroup]
    selectors: dict  # local/existing providers' node_selectors


@dataclass
class ImportedProfile:
    name: str
    display: str  # Nebari's display name (Keycloak grants name profiles by it)
    source: str  # e.g. profiles.jupyterlab[0] (for the report)
    kind: str  # notebook | dask
    cpu: int
    memory: int
    instance: str | None = None
    spot: bool = False
    gpu: tuple[int, str] | None = None
    price: float | None = None
    todos: dict[str, str] = field(default_factory=dict)  # key in the profile -> TODO text
    access: str = "all"  # all | yaml | keycloak
    groups: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    default: bool = False


def notebook_profiles(src: Source, placement: Placement, report: Report) -> list[ImportedProfile]:
    items = src.sequence("profiles", "jupyterlab")
    defaulted = not items
    if defaulted:
        items = defaults.JUPYTERLAB_PROFILES
        report.note("no `profiles.jupyterlab` in the file: imported Nebari's two default notebook profiles")
    result = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        path = ("profiles", "jupyterlab", index)
        view = _View(src, path, item, defaulted)
        override = item.get("kubespawner_override") or {}
        display = str(view.take("display_name") or f"profile-{index}")
        profile = _sized(
            view,
            display,
            slug(display),
            "notebook",
            ("kubespawner_override", "cpu_limit"),
            ("kubespawner_override", "mem_limit"),
            report,
        )
        gpus = int((override.get("extra_resource_limits") or {}).get(GPU_LIMIT, 0) or 0)
        if gpus:
            view.take("kubespawner_override", "extra_resource_limits", GPU_LIMIT)
        selector = view.take("kubespawner_override", "node_selector")
        _place(profile, placement, group_of(selector, placement.groups, placement.selectors) or "user", gpus, report)
        for key in ("cpu_guarantee", "mem_guarantee"):
            view.drop(("kubespawner_override", key), GUARANTEE)
        view.drop(("kubespawner_override", "image"), IMAGE)
        view.drop(("profile_options",), "profile options (choices inside a profile): make each choice a profile")
        view.drop(("description",), "graticule profiles carry no description; the name says it")
        profile.default = bool(view.take("default"))
        access = view.take("access")
        groups, users = view.take("groups") or [], view.take("users") or []
        profile.access = str(access or ("yaml" if groups or users else "all"))
        profile.groups = [str(g) for g in groups]
        profile.users = [str(u) for u in users]
        view.mapped(report, profile)
        result.append(profile)
    return result


def dask_profiles(src: Source, placement: Placement, report: Report) -> list[ImportedProfile]:
    items = src.mapping("profiles", "dask_worker")
    defaulted = not items
    if defaulted:
        items = defaults.DASK_WORKER_PROFILES
        report.note("no `profiles.dask_worker` in the file: imported Nebari's two default Dask worker sizes")
    result = []
    for key, item in items.items():
        if not isinstance(item, dict):
            continue
        path = ("profiles", "dask_worker", key)
        view = _View(src, path, item, defaulted)
        profile = _sized(
            view, str(key), slug(str(key)), "dask", ("worker_cores_limit",), ("worker_memory_limit",), report
        )
        limits = ((item.get("worker_extra_container_config") or {}).get("resources") or {}).get("limits") or {}
        gpus = int(limits.get(GPU_LIMIT, 0) or 0)
        if gpus:
            view.take("worker_extra_container_config", "resources", "limits", GPU_LIMIT)
        selector = view.take("worker_extra_pod_config", "nodeSelector")
        _place(profile, placement, group_of(selector, placement.groups, placement.selectors) or "worker", gpus, report)
        for guarantee in ("worker_cores", "worker_memory"):
            view.drop((guarantee,), GUARANTEE)
        view.drop(("worker_threads",), "a worker runs one thread per core of its profile")
        view.drop(("image",), IMAGE)
        view.mapped(report, profile)
        result.append(profile)
    return result


class _View:
    """One profile of the Nebari file, or one of Nebari's defaults (which take nothing)."""

    def __init__(self, src: Source, path: tuple, item: dict, defaulted: bool):
        self.src, self.path, self.item, self.defaulted = src, path, item, defaulted
        self.used: list[str] = []  # keys taken, for the report's Mapped line

    def take(self, *keys: str) -> object:
        node: object = self.item
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            self.used.append(dotted(keys))
            if not self.defaulted:
                self.src.take(*self.path, *keys)
        return node

    def mapped(self, report: Report, profile: ImportedProfile) -> None:
        detail = f"{profile.cpu} CPU, {sizes.memory_text(profile.memory)}"
        report.map(self.label, f"profiles.{profile.name}", detail, keys=() if self.defaulted else self.used)

    def drop(self, keys: tuple, reason: str) -> None:
        if not self.defaulted:
            self.src.drop((*self.path, *keys), reason)

    @property
    def label(self) -> str:
        return ("(Nebari default) " if self.defaulted else "") + dotted(self.path)


def _sized(
    view: _View, display: str, name: str, kind: str, cpu_key: tuple, mem_key: tuple, report: Report
) -> ImportedProfile:
    raw_cpu, raw_memory = view.take(*cpu_key), view.take(*mem_key)
    try:
        cpu, rounded = sizes.cpus(raw_cpu if raw_cpu is not None else 1)
        memory = sizes.memory(raw_memory if raw_memory is not None else "2G")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{view.label}: {exc}") from None
    if rounded:
        report.note(f"{view.label}: {raw_cpu} CPUs rounded up to {cpu} (profiles have whole CPUs)")
    profile = ImportedProfile(name=name, display=display, source=view.label, kind=kind, cpu=cpu, memory=memory)
    if raw_cpu is None or raw_memory is None:
        size = f"{cpu} CPU, {sizes.memory_text(memory)}"
        profile.todos["cpu"] = f"TODO(import): the Nebari profile set no limits; {size} assumed"
        report.invent(f"profiles.{name}.cpu, memory", f"{size} (the Nebari profile set no limits)")
    return profile


def _place(profile: ImportedProfile, placement: Placement, group_name: str, gpus: int, report: Report) -> None:
    target = placement.target
    if target == "local":
        if gpus:
            report.note(f"{profile.source}: {gpus} GPU(s) not carried to target local (no GPUs on this machine)")
        return
    group = placement.groups.get(group_name)
    if placement.source_cloud == target and group is not None:
        _from_group(profile, group, gpus, target, report)
    else:
        _by_size(profile, gpus, target, group, report)
    _price(profile, placement, report)


def _from_group(profile: ImportedProfile, group: NodeGroup, gpus: int, cloud: str, report: Report) -> None:
    if gpus and group.machines and not any(m.gpus for m in group.machines):
        report.note(f"{profile.source}: asks for {gpus} GPU(s) but node group {group.name!r} has none")
        _by_size(profile, gpus, cloud, group, report, why=f"node group {group.name!r} has no GPU type")
        return
    profile.spot = group.spot
    group.used_by.append(profile)
    chosen = machines.smallest_fit(group.machines, profile.cpu, profile.memory, gpus)
    if chosen is None and group.machines:
        chosen = max(group.machines, key=lambda m: (m.vcpus, m.memory_gib))
        report.note(
            f"{profile.source}: larger than any type of node group {group.name!r}; sized down to "
            f"{chosen.name} ({chosen.vcpus} CPU, {chosen.memory_gib:g} GiB)"
        )
        profile.cpu = min(profile.cpu, chosen.vcpus)
        profile.memory = min(profile.memory, chosen.memory_bytes)
    instance = chosen.name if chosen else group.instances[0]
    if chosen is None:
        report.note(f"{profile.source}: size of {instance} unknown to the importer; kept as Nebari had it")
    profile.instance = instance
    if gpus:
        gpu_type = group.gpu_type or (machines.aws_gpu_type(instance) if cloud == "aws" else None)
        profile.gpu = (gpus, gpu_type or "nvidia-t4")
        if gpu_type is None:
            profile.todos["gpu"] = "TODO(import): the GPU model was not in the Nebari file; check it"


def _by_size(
    profile: ImportedProfile,
    gpus: int,
    cloud: str,
    group: NodeGroup | None,
    report: Report,
    why: str = "Nebari's machine type has no equivalent on this cloud",
) -> None:
    if gpus:
        candidates = [m for m in machines.CATALOGS[cloud].values() if m.gpus]
        if cloud == "gcp":  # GCP attaches GPUs to N1 types
            candidates = [
                machines.Machine(m.name, m.vcpus, m.memory_gib, 4, "nvidia-t4", m.hourly_usd)
                for m in machines.CATALOGS["gcp"].values()
                if m.name.startswith("n1-standard-")
            ]
    else:
        candidates = machines.general_purpose(cloud)
    chosen = machines.smallest_fit(candidates, profile.cpu, profile.memory, gpus) or max(
        candidates, key=lambda m: (m.vcpus, m.memory_gib)
    )
    profile.cpu, profile.memory = min(profile.cpu, chosen.vcpus), min(profile.memory, chosen.memory_bytes)
    profile.instance = chosen.name
    profile.spot = bool(group and group.spot)
    if gpus:
        profile.gpu = (gpus, chosen.gpu_type or "nvidia-t4")
        wanted = group.gpu_type if group else None
        if wanted != profile.gpu[1]:
            was = f"Nebari's GPU was {wanted}" if wanted else "the Nebari file names no GPU model"
            profile.todos["gpu"] = f"TODO(import): {was}; {profile.gpu[1]} is the nearest by size here"
            report.note(f"{profile.source}: {was}; {profile.gpu[1]} chosen by size: review")
    profile.todos["instance"] = (
        f"TODO(import): chosen by size ({profile.cpu} CPU, {sizes.memory_text(profile.memory)}): {why}"
    )
    report.invent(f"profiles.{profile.name}.instance.{cloud}", f"{chosen.name}, chosen by size")


def _price(profile: ImportedProfile, placement: Placement, report: Report) -> None:
    """The platform's price table must price every profile; where it cannot, use a list price."""
    cloud, region = placement.target, placement.region or ""
    instance = profile.instance or ""
    gpu_missing = bool(
        profile.gpu
        and prices.gpus_priced_separately(cloud)
        and prices.accelerator_hourly(cloud, region, profile.gpu[1]) is None
    )
    if prices.instance_hourly(cloud, region, instance) is not None and not gpu_missing:
        return
    known = machines.machine(cloud, instance)
    hourly = known.hourly_usd if known and known.hourly_usd is not None else 0.05 * profile.cpu
    if profile.gpu and cloud == "gcp":
        hourly += machines.GCP_ACCELERATORS.get(profile.gpu[1], 1.0) * profile.gpu[0]
    profile.price = round(hourly, 4)
    basis = "list price" if known else "an estimate of $0.05 per CPU-hour"
    profile.todos["price_per_hour_usd"] = (
        f"TODO(import): {basis} of {instance}"
        + (f" with {profile.gpu[0]}x {profile.gpu[1]}" if profile.gpu else "")
        + f"; not in the platform's price table for {region}: check it"
    )
    report.invent(f"profiles.{profile.name}.price_per_hour_usd", f"{profile.price} ({basis}; budgets use it)")

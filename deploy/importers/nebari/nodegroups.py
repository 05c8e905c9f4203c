"""Nebari node groups -> the machine types, spot flag and GPUs profiles run on.

A profile names its node group through `node_selector` (notebooks) or the worker pod's
`nodeSelector` (Dask): on AWS through the `dedicated` label (or EKS's own nodegroup
label), on GCP through the GKE node-pool label, on local/existing clusters through the
`node_selectors` of the provider section. Without one, notebooks use `user`, Dask uses
`worker`, and `general` is the hub's machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deploy.importers.nebari import defaults, machines
from deploy.importers.nebari.report import Report
from deploy.importers.nebari.source import Source

GROUP_LABELS = ("dedicated", "eks.amazonaws.com/nodegroup", "cloud.google.com/gke-nodepool", "azure-node-pool")
NO_NODE_POOLS = (
    "node pools do not exist here: every notebook server and Dask worker is a VM of its own, "
    "started on demand and stopped when idle"
)


@dataclass
class NodeGroup:
    name: str
    instances: list[str]
    spot: bool = False
    gpu_type: str | None = None  # from GCP guest_accelerators or the AWS family
    gpus: int = 0  # GPUs attached per node on GCP
    machines: list[machines.Machine] = field(default_factory=list)  # the types we know the size of
    path: tuple = ()
    keys: list[str] = field(default_factory=list)  # what the import reads, taken once the group is used
    defaulted: bool = False
    used_by: list[object] = field(default_factory=list)  # profiles (or "hub.instance") placed on it


def read_node_groups(src: Source, provider: str, section: tuple) -> tuple[dict[str, NodeGroup], bool]:
    """The provider's node groups, and whether they are Nebari's defaults (section absent)."""
    raw = src.mapping(*section, "node_groups")
    defaulted = not raw and provider in defaults.NODE_GROUPS
    if defaulted:
        raw = defaults.NODE_GROUPS[provider]
    groups = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            continue
        path = (*section, "node_groups", name)
        groups[str(name)] = _group(src, provider, str(name), spec, path, defaulted)
    return groups, defaulted


def _group(src: Source, provider: str, name: str, spec: dict, path: tuple, defaulted: bool) -> NodeGroup:
    group = NodeGroup(name, [], path=path, defaulted=defaulted)

    def take(key: str) -> object:
        if key in spec and key not in group.keys:
            group.keys.append(key)
        return spec.get(key)

    instance = take("instance")
    if instance is None:
        instance = take("instance_type")
    group.instances = [str(i) for i in (instance if isinstance(instance, list) else [instance]) if i]
    instances = group.instances
    if provider == "gcp":
        group.spot = bool(take("preemptible") or take("spot"))
        accelerators = take("guest_accelerators") or []
        if accelerators and isinstance(accelerators[0], dict):
            group.gpu_type = machines.gcp_gpu_type(str(accelerators[0].get("name", "")))
            group.gpus = int(accelerators[0].get("count", 1) or 1)
    else:
        group.spot = bool(take("spot"))
        gpu_flag = take("gpu")
        family = next((machines.aws_gpu_type(i) for i in instances if machines.aws_gpu_type(i)), None)
        if family or gpu_flag:
            group.gpu_type = family
    for key in ("min_nodes", "max_nodes"):
        src.drop((*path, key), NO_NODE_POOLS)
    src.drop(
        (*path, "taints"), "taints keep pods off nodes; here each VM serves one profile, so there is nothing to repel"
    )
    for instance_type in instances:
        known = machines.machine(provider, instance_type)
        if known is None:
            continue
        if provider == "gcp" and group.gpus:
            known = machines.Machine(
                known.name, known.vcpus, known.memory_gib, group.gpus, group.gpu_type, known.hourly_usd
            )
        group.machines.append(known)
    return group


def account_groups(src: Source, groups: dict[str, NodeGroup], report: Report) -> None:
    """Take the keys of the groups something runs on, and say what they became."""
    for group in groups.values():
        if not group.used_by:
            continue
        users = sorted({u if isinstance(u, str) else f"profiles.{u.name}" for u in group.used_by})  # type: ignore[attr-defined]
        if group.defaulted:
            report.map(f"(Nebari default) node group {group.name!r}", ", ".join(users), ", ".join(group.instances))
            continue
        for key in group.keys:
            src.take(*group.path, key)
        report.map(group.path, ", ".join(users), "", keys=group.keys)


def group_of(selector: object, groups: dict[str, NodeGroup], selectors: dict) -> str | None:
    """The node group a Kubernetes node selector names, if it names one."""
    if not isinstance(selector, dict):
        return None
    for key, value in selector.items():
        for group, pair in selectors.items():  # local/existing: the provider's own selector per group
            if isinstance(pair, dict) and pair.get("key") == key and pair.get("value") == value:
                return str(group)
        if key in GROUP_LABELS and value in groups:
            return str(value)
    return next((str(v) for v in selector.values() if v in groups), None)

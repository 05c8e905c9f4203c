"""The whole import: Nebari config (+ realm export) -> platform.yaml text and a report.

The text is validated with the repository's own validator before it is returned: an
import that does not validate as written is a bug here, never the admin's problem.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.importers.nebari import defaults, machines
from deploy.importers.nebari.auth import import_auth
from deploy.importers.nebari.cloud import choose_target, import_cloud
from deploy.importers.nebari.dropped import unaccounted
from deploy.importers.nebari.environments import import_environments
from deploy.importers.nebari.keycloak import Realm
from deploy.importers.nebari.names import dns_name, unique
from deploy.importers.nebari.nodegroups import NodeGroup, account_groups, read_node_groups
from deploy.importers.nebari.options import ImportOptions, ImportRefused
from deploy.importers.nebari.people import import_people
from deploy.importers.nebari.profiles import ImportedProfile, Placement, dask_profiles, notebook_profiles
from deploy.importers.nebari.report import Report
from deploy.importers.nebari.sizes import memory_text
from deploy.importers.nebari.source import Source
from deploy.importers.nebari.writer import to_yaml
from render.schema import API_VERSION
from render.validate import validate_text


@dataclass
class ImportResult:
    text: str
    report: Report
    target: str
    nebari_version: str


def import_nebari(data: object, source_name: str, options: ImportOptions, realm: Realm | None = None) -> ImportResult:
    if not isinstance(data, dict) or not ({"project_name", "provider"} & set(data)):
        raise ImportRefused((), "not a Nebari or QHub config (no `project_name` or `provider`)")
    src, report = Source(data), Report()
    provider = src.provider()
    version = src.version
    report.note(f"read {source_name}: {'QHub' if src.era == 'qhub' else 'Nebari'} {version}, provider {provider}")
    name = dns_name(str(src.take("project_name") or "nebari"))
    report.map("project_name", "name", name)
    report.map("provider", "target", provider)
    for key in ("nebari_version", "qhub_version"):
        if key in data:
            report.map(key, "apiVersion", f"{API_VERSION} (the import reads every Nebari and QHub version)")
    target = choose_target(provider, options, report)
    cloud = import_cloud(src, provider, target, name, options, report)
    groups = _node_groups(src, provider, cloud.source_cloud, report)
    placement = Placement(
        target,
        cloud.source_cloud,
        cloud.region,
        groups,
        src.mapping(src.provider_section(provider)[0], "node_selectors"),
    )
    profiles = _renamed(notebook_profiles(src, placement, report) + dask_profiles(src, placement, report))
    environments = _renamed(import_environments(src, report))
    auth = import_auth(src, options, name, report)
    people = import_people(src, realm, profiles, [e.name for e in environments], options, report)

    document: dict = {"apiVersion": API_VERSION, "name": name, "target": target}
    todos: dict[tuple, str] = {}
    if cloud.block is not None:
        document["cloud"] = {target: cloud.block}
        todos.update({("cloud", target, *path): text for path, text in cloud.todos.items()})
    document["hub"] = _hub(src, target, groups, cloud.source_cloud, profiles, auth.block, todos, report)
    todos.update({("hub", "auth", *path): text for path, text in auth.todos.items()})
    document.update(groups=people.groups, users=people.users, budgets=people.budgets)
    todos.update(people.todos)
    document["profiles"] = {p.name: _profile(p, target, todos) for p in profiles}
    document["dask"] = _dask(profiles, report)
    document["environments"] = {}
    for env in environments:
        document["environments"][env.name] = {"python": env.python, "packages": env.packages}
        todos.update({("environments", env.name, key): text for key, text in env.todos.items()})
    ci = _ci(src, target, options, todos, report)
    if ci:
        document["ci"] = ci
    if cloud.source_cloud:
        account_groups(src, groups, report)
    for path, reason in unaccounted(src):
        report.drop(path, reason)
    header = (
        f"Imported from {source_name} ({'QHub' if src.era == 'qhub' else 'Nebari'} {version}) by "
        "`platform import nebari`.\nReview every `TODO(import)` before the first `platform apply`."
    )
    text = to_yaml(document, todos, header)
    validate_text(text, "platform.yaml")  # raises ConfigErrors: a bug in the importer
    return ImportResult(text, report, target, version)


def _renamed(items: list) -> list:
    """Unique names: two Nebari display names may slug to the same platform.yaml name."""
    taken: set[str] = set()
    for item in items:
        item.name = unique(item.name, taken)
    return items


def _dask(profiles: list[ImportedProfile], report: Report) -> dict:
    workers = [p for p in profiles if p.kind == "dask"] or profiles
    minutes = defaults.DASK_IDLE_MINUTES
    report.map("dask-gateway (Nebari's fixed settings)", "dask.idle_timeout", f"{minutes}m, as Nebari's clusters")
    return {"default_profile": workers[0].name, "idle_timeout": f"{minutes}m"}


def _node_groups(src: Source, provider: str, source_cloud: str | None, report: Report) -> dict[str, NodeGroup]:
    section = src.provider_section(provider)
    if source_cloud is None and provider in ("aws", "gcp", "azure", "do"):
        src.drop((*section, "node_groups"), "machine types of another cloud: profiles were sized instead")
    if provider in ("aws", "gcp") and source_cloud is None:  # another cloud: spot and GPU models still count
        return read_node_groups(src, provider, section)[0]
    if source_cloud is None:
        names = src.mapping(section[0], "node_selectors") or {"general": {}, "user": {}, "worker": {}}
        if names and provider in ("local", "existing"):
            src.drop((*section, "node_selectors"), "node selectors of a Kubernetes cluster: nothing to select here")
        return {str(n): NodeGroup(str(n), []) for n in names}
    groups, defaulted = read_node_groups(src, provider, src.provider_section(provider))
    if defaulted:
        report.note(
            f"no node_groups in the file: Nebari's default {provider} node groups "
            f"({', '.join(f'{n}={g.instances[0]}' for n, g in groups.items())})"
        )
    return groups


def _hub(
    src: Source,
    target: str,
    groups: dict[str, NodeGroup],
    source_cloud: str | None,
    profiles: list[ImportedProfile],
    auth: dict,
    todos: dict,
    report: Report,
) -> dict:
    hub: dict = {}
    domain = src.take("domain")
    if isinstance(domain, str) and domain:
        hub["domain"] = domain.lower()
        report.map("domain", "hub.domain")
    hub["auth"] = auth
    if target != "local":
        general = groups.get("general")
        if source_cloud == target and general and general.instances:
            hub["instance"] = {target: general.instances[0]}
            general.used_by.append("hub.instance")
        else:
            chosen = machines.smallest_fit(machines.general_purpose(target), 2, 8 * 1024**3, 0)
            assert chosen is not None
            hub["instance"] = {target: chosen.name}
            todos[("hub", "instance", target)] = "TODO(import): chosen by size (2 CPU, 8GiB) for the hub VM"
            report.invent(f"hub.instance.{target}", f"{chosen.name}, chosen by size")
    notebooks = [p for p in profiles if p.kind == "notebook"] or profiles
    default = next((p for p in notebooks if p.default), notebooks[0])
    hub["default_profile"] = default.name
    idle = src.take("jupyterlab", "idle_culler", "server_shutdown_no_activity_timeout")
    minutes = int(idle) if isinstance(idle, int | float) and idle > 0 else defaults.NOTEBOOK_IDLE_MINUTES
    hub["idle_timeout"] = f"{minutes}m"
    report.map(
        "jupyterlab.idle_culler.server_shutdown_no_activity_timeout",
        "hub.idle_timeout",
        f"{minutes}m" + ("" if idle is not None else ", Nebari's default"),
    )
    return hub


def _profile(profile: ImportedProfile, target: str, todos: dict) -> dict:
    block: dict = {"cpu": profile.cpu, "memory": memory_text(profile.memory)}
    if profile.instance:
        block["instance"] = {target: profile.instance}
    if profile.spot:
        block["spot"] = True
    if profile.gpu:
        block["gpu"] = {"count": profile.gpu[0], "type": profile.gpu[1]}
    if profile.price is not None:
        block["price_per_hour_usd"] = profile.price
    for key, text in profile.todos.items():
        path = ("profiles", profile.name, key) + ((target,) if key == "instance" else ())
        todos[path] = text
    return block


def _ci(src: Source, target: str, options: ImportOptions, todos: dict, report: Report) -> dict | None:
    kind = src.take("ci_cd", "type")
    if kind is not None:
        where = "ci" if target != "local" or options.ci_repository else "(no CI on target local)"
        report.map(("ci_cd", "type"), where, str(kind))
    if kind == "gitlab-ci":
        report.note("ci_cd.type gitlab-ci: the generated workflows are GitHub Actions")
    if target == "local" and not options.ci_repository:
        return None
    repository = options.ci_repository or "change-me/platform"
    if not options.ci_repository:
        todos[("ci", "repository")] = (
            "TODO(import): owner/name of the repository holding platform.yaml (--ci-repository)"
        )
        report.invent("ci.repository", "change-me/platform (placeholder)")
    return {"provider": "github", "repository": repository}


__all__ = ["ImportRefused", "ImportResult", "import_nebari"]

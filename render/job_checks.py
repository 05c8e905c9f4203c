"""Checks of the `jobs:` section that reach into other sections: the owner is a user with
a budget, the driver's and cluster's profiles and the environment are granted to the
owner, what to run is said once. On the raw tree, like render.checks."""

from __future__ import annotations

from collections.abc import Iterator

from render.findings import Finding, mapping, suggest
from render.schema import API_VERSION


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _owner_grants(root: dict, owner: dict) -> tuple[set[str], set[str], bool]:
    """(profiles, environments, has a budget) of a user, from their groups."""
    groups = mapping(root.get("groups"))
    profiles: set[str] = set()
    environments: set[str] = set()
    budget = isinstance(owner.get("budget"), str)
    for name in _list(owner.get("groups")):
        group = mapping(groups.get(name)) if isinstance(name, str) else {}
        profiles.update(p for p in _list(group.get("profiles")) if isinstance(p, str))
        environments.update(e for e in _list(group.get("environments")) if isinstance(e, str))
        budget = budget or isinstance(group.get("budget"), str)
    return profiles, environments, budget


def check(root: dict) -> Iterator[Finding]:
    jobs = root.get("jobs")
    if not isinstance(jobs, dict):
        return
    if jobs and root.get("apiVersion") == "graticule/v1":
        yield Finding(
            ("jobs",),
            f"`jobs:` needs apiVersion {API_VERSION}; run `platform upgrade` to rewrite this file",
            at_key=True,
        )
    users = {u.get("name"): u for u in _list(root.get("users")) if isinstance(u, dict)}
    known_profiles = [name for name in mapping(root.get("profiles")) if isinstance(name, str)]
    for name, job in jobs.items():
        job = mapping(job)
        yield from _check_run(("jobs", name, "run"), mapping(job.get("run")), "run" in job)
        yield from _check_cluster(("jobs", name, "cluster"), mapping(job.get("cluster")))
        owner_name = job.get("owner")
        if not isinstance(owner_name, str):
            continue
        if owner_name not in users:
            declared = sorted(n for n in users if isinstance(n, str))
            yield Finding(
                ("jobs", name, "owner"),
                f"unknown user {owner_name!r}{suggest(owner_name, declared)}; a job's owner must be a "
                f"user of platform.yaml (declared: {', '.join(declared) or 'none'})",
            )
            continue
        profiles, environments, has_budget = _owner_grants(root, users[owner_name])
        if not has_budget:
            yield Finding(
                ("jobs", name, "owner"),
                f"user {owner_name!r} has no budget to pay for this job's runs; give the user or "
                "one of their groups a `budget:`",
            )
        for path, profile in (
            (("jobs", name, "profile"), job.get("profile")),
            (("jobs", name, "cluster", "profile"), mapping(job.get("cluster")).get("profile")),
        ):
            if not isinstance(profile, str):
                continue
            if profile not in known_profiles:
                yield Finding(path, f"unknown profile {profile!r}{suggest(profile, known_profiles)}")
            elif profile not in profiles:
                allowed = ", ".join(sorted(profiles)) or "none"
                yield Finding(path, f"profile {profile!r} is not granted to {owner_name!r} (granted: {allowed})")
        environment = job.get("environment")
        if isinstance(environment, str) and environment not in environments:
            allowed = ", ".join(sorted(environments)) or "none"
            yield Finding(
                ("jobs", name, "environment"),
                f"environment {environment!r} is not granted to {owner_name!r} (granted: {allowed})",
            )


def _check_run(path: tuple, run: dict, present: bool) -> Iterator[Finding]:
    if not present:
        return  # pydantic says the key is missing
    given = [key for key in ("script", "notebook") if key in run]
    if len(given) != 1:
        yield Finding(path, "say what to run: exactly one of `script:` or `notebook:`" + (
            f" (got both {' and '.join(given)})" if given else ""))
    if "ref" in run and "repository" not in run:
        yield Finding((*path, "ref"), "`ref:` needs a `repository:` to check out")
    for key in given:
        where = run.get(key)
        if isinstance(where, str) and (where.startswith("/") or ".." in where.split("/")):
            yield Finding((*path, key), f"{where!r} must be a relative path inside the owner's home or the repository")


def _check_cluster(path: tuple, cluster: dict) -> Iterator[Finding]:
    adaptive = cluster.get("adaptive")
    if "workers" in cluster and "adaptive" in cluster:
        yield Finding(path, "give `workers:` or `adaptive:`, not both")
    pair = isinstance(adaptive, list) and len(adaptive) == 2 and all(isinstance(v, int) for v in adaptive)
    if pair and adaptive[0] > adaptive[1]:
        yield Finding((*path, "adaptive"), f"adaptive minimum {adaptive[0]} is over its maximum {adaptive[1]}")

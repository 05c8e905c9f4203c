"""Cross-reference checks: names that must refer to something declared elsewhere.

They run on the raw loaded tree, not on the pydantic model, so they still report when
some unrelated section failed to parse: the user sees every error at once. Each check
reads defensively (a section of the wrong type is pydantic's error to report, not ours).
"""

from __future__ import annotations

from collections.abc import Iterator

from render import job_checks, machine_checks, prices
from render.environments import check_packages
from render.findings import Finding, suggest
from render.schema import CLOUD_TARGETS

__all__ = ["Finding", "check", "suggest"]
# Targets whose stack renders the self-hosted CI runner VM (modules/aws/runner.py).
SELF_HOSTED_RUNNER_TARGETS = ("aws",)


def _map(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _names(value: object) -> list[str]:
    return [key for key in _map(value) if isinstance(key, str)]


def _declared(root: dict, section: str) -> list[str] | None:
    """Names declared in `section`, or None when the section itself is malformed
    (then pydantic reports it, and references into it are not worth a second error)."""
    value = root.get(section, {})
    return _names(value) if isinstance(value, dict) else None


def _unknown(kind: str, name: object, declared: list[str]) -> str:
    known = ", ".join(sorted(declared)) or "none declared"
    return f"unknown {kind} {name!r}{suggest(name, declared)}; declared: {known}"


def check(data: object) -> list[Finding]:
    """Every cross-reference problem in a loaded platform.yaml tree."""
    root = _map(data)
    return [
        *_check_target(root),
        *_check_groups(root),
        *_check_users(root),
        *_check_default_profiles(root),
        *_check_budgets(root),
        *_check_instances(root),
        *_check_prices(root),
        *machine_checks.check(root),
        *_check_auth(root),
        *_check_storage(root),
        *_check_environments(root),
        *_check_ci(root),
        *job_checks.check(root),
    ]


def _check_target(root: dict) -> Iterator[Finding]:
    target = root.get("target", "local")
    if target in CLOUD_TARGETS and not isinstance(_map(root.get("cloud")).get(target), dict):
        yield Finding(("target",), f"target is {target!r} but there is no cloud.{target} block")


def _check_groups(root: dict) -> Iterator[Finding]:
    budgets = _declared(root, "budgets")
    profiles = _declared(root, "profiles")
    environments = _declared(root, "environments")
    for name, group in _map(root.get("groups")).items():
        group = _map(group)
        budget = group.get("budget")
        if isinstance(budget, str) and budgets is not None and budget not in budgets:
            yield Finding(("groups", name, "budget"), _unknown("budget", budget, budgets))
        for index, profile in enumerate(_list(group.get("profiles"))):
            if isinstance(profile, str) and profiles is not None and profile not in profiles:
                yield Finding(("groups", name, "profiles", index), _unknown("profile", profile, profiles))
        for index, env in enumerate(_list(group.get("environments"))):
            if isinstance(env, str) and environments is not None and env not in environments:
                yield Finding(
                    ("groups", name, "environments", index), _unknown("environment", env, environments)
                )


def _check_users(root: dict) -> Iterator[Finding]:
    groups = _map(root.get("groups"))
    group_names = _declared(root, "groups")
    budgets = _declared(root, "budgets")
    seen: dict[str, int] = {}
    for index, user in enumerate(_list(root.get("users"))):
        user = _map(user)
        name = user.get("name")
        if isinstance(name, str):
            if name in seen:
                yield Finding(
                    ("users", index, "name"), f"user {name!r} is already declared at users[{seen[name]}]"
                )
            else:
                seen[name] = index
        member_of = _list(user.get("groups"))
        if "groups" not in user or not member_of:
            yield Finding(("users", index), f"user {name!r} is in no group; add at least one under groups")
        for position, group in enumerate(member_of):
            if isinstance(group, str) and group_names is not None and group not in group_names:
                yield Finding(("users", index, "groups", position), _unknown("group", group, group_names))
        budget = user.get("budget")
        if isinstance(budget, str):
            if budgets is not None and budget not in budgets:
                yield Finding(("users", index, "budget"), _unknown("budget", budget, budgets))
            continue
        # Without a personal budget, the groups' budget pays: it must be unambiguous.
        paying = sorted(
            {
                _map(groups.get(group)).get("budget")
                for group in member_of
                if isinstance(group, str) and isinstance(_map(groups.get(group)).get("budget"), str)
            }
        )
        if len(paying) > 1:
            yield Finding(
                ("users", index, "groups"),
                f"user {name!r} is in groups with different budgets ({', '.join(paying)}); "
                "give the user a personal `budget:` to say which one pays",
            )


def _check_default_profiles(root: dict) -> Iterator[Finding]:
    profiles = _declared(root, "profiles")
    for section in ("hub", "dask"):
        default = _map(root.get(section)).get("default_profile")
        if isinstance(default, str) and profiles is not None and default not in profiles:
            yield Finding((section, "default_profile"), _unknown("profile", default, profiles))


def _check_budgets(root: dict) -> Iterator[Finding]:
    for name, budget in _map(root.get("budgets")).items():
        alerts = [value for value in _list(_map(budget).get("alerts")) if isinstance(value, int)]
        for index in range(1, len(alerts)):
            if alerts[index] <= alerts[index - 1]:
                yield Finding(
                    ("budgets", name, "alerts", index),
                    f"alert thresholds must be strictly ascending; {alerts[index]} follows {alerts[index - 1]}",
                )


def _check_instances(root: dict) -> Iterator[Finding]:
    target = root.get("target", "local")
    if target not in CLOUD_TARGETS:
        return
    hub = _map(root.get("hub"))
    if not isinstance(_map(hub.get("instance")).get(target), str):
        where = ("hub", "instance") if "instance" in hub else ("hub",)
        yield Finding(where, f"target is {target!r}: the hub needs an `instance: {{{target}: ...}}` entry")
    for name, profile in _map(root.get("profiles")).items():
        profile = _map(profile)
        if not isinstance(_map(profile.get("instance")).get(target), str):
            where = ("profiles", name, "instance") if "instance" in profile else ("profiles", name)
            yield Finding(where, f"target is {target!r}: profile {name!r} needs an instance type for {target}")


def _check_prices(root: dict) -> Iterator[Finding]:
    """On a cloud target every profile needs a price: from the bundled table or its own."""
    target = root.get("target", "local")
    if target not in CLOUD_TARGETS:
        return
    region = _map(_map(root.get("cloud")).get(target)).get("region")
    if not machine_checks.known_region(target, region):
        return  # machine_checks reports an unknown region; a price error on top would be noise
    where = f"in the price table of {prices.date()}"
    if prices.region_prices(target, region) is None:
        where = f"({region} is not in the price table of {prices.date()}: {', '.join(prices.regions(target))})"
    for name, profile in _map(root.get("profiles")).items():
        profile = _map(profile)
        if "price_per_hour_usd" in profile:
            continue
        kind = _map(profile.get("instance")).get(target)
        # An unknown type, or one not offered in the region, is machine_checks' error: one error per mistake.
        if machine_checks.offered(target, kind, region) and prices.instance_hourly(target, region, kind) is None:
            known = prices.known_instances(target, region)
            yield Finding(
                ("profiles", name, "instance", target),
                f"no known price for {target} instance type {kind!r} in {region} {where}"
                f"{suggest(kind, known)}; set `price_per_hour_usd:` on profile {name!r}",
            )
        gpu = _map(profile.get("gpu")).get("type")
        separate = prices.gpus_priced_separately(target)
        if separate and isinstance(gpu, str) and prices.accelerator_hourly(target, region, gpu) is None:
            yield Finding(
                ("profiles", name, "gpu", "type"),
                f"no known price for {target} GPU {gpu!r} in {region} {where}; "
                f"set `price_per_hour_usd:` on profile {name!r}",
            )


def _check_auth(root: dict) -> Iterator[Finding]:
    auth = _map(_map(root.get("hub")).get("auth"))
    provider = auth.get("provider")
    if provider in ("github", "oidc") and not isinstance(auth.get(provider), dict):
        yield Finding(("hub", "auth", "provider"), f"provider is {provider!r} but hub.auth.{provider} is missing")
    target = root.get("target", "local")
    egress = _map(_map(root.get("cloud")).get(target)).get("egress") if target in CLOUD_TARGETS else None
    if provider == "github" and egress == "none":
        # With no egress the hub VM cannot reach github.com, so nobody could ever log in.
        yield Finding(
            ("hub", "auth", "provider"),
            f"GitHub login needs internet access, but cloud.{target}.egress is 'none'; "
            "use `oidc` with an identity provider reachable from the VPC, or egress: nat",
        )


def _check_storage(root: dict) -> Iterator[Finding]:
    group_names = _declared(root, "groups")
    seen: set[str] = set()
    for index, store in enumerate(_list(_map(root.get("integrations")).get("storage"))):
        store = _map(store)
        name = store.get("name")
        if isinstance(name, str):
            if name in seen:
                yield Finding(("integrations", "storage", index, "name"), f"storage {name!r} is declared twice")
            seen.add(name)
        for group in _map(store.get("access")):
            if group_names is not None and group not in group_names:
                yield Finding(
                    ("integrations", "storage", index, "access", group),
                    _unknown("group", group, group_names),
                    at_key=True,
                )


def _check_ci(root: dict) -> Iterator[Finding]:
    """A self-hosted runner that is never rendered or can never register: the apply and
    drift workflows, which run on it, would wait forever."""
    if _map(root.get("ci")).get("runner") != "self-hosted":
        return
    target = root.get("target", "local")
    if target in ("local", *CLOUD_TARGETS) and target not in SELF_HOSTED_RUNNER_TARGETS:
        yield Finding(
            ("ci", "runner"),
            f"runner 'self-hosted' needs a runner VM, which only target "
            f"{' or '.join(SELF_HOSTED_RUNNER_TARGETS)} renders (target is {target!r}): the apply and drift "
            "workflows would wait forever; use `runner: github-hosted`",
        )
    elif target in SELF_HOSTED_RUNNER_TARGETS and _map(_map(root.get("cloud")).get(target)).get("egress") == "none":
        yield Finding(
            ("ci", "runner"),
            f"the self-hosted runner VM must reach GitHub, but cloud.{target}.egress is 'none': the apply "
            "and drift workflows would wait forever; use `runner: github-hosted`, or egress: nat",
        )


def _check_environments(root: dict) -> Iterator[Finding]:
    for path, message in check_packages(root):
        yield Finding(path, message)

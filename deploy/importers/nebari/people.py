"""Users, groups, grants and budgets.

People come from a Keycloak realm export (current Nebari keeps them there), from the
file itself (QHub 0.3 listed `security.users` and `security.groups`), or, with neither,
one admin named by --admin. Profile access `yaml` (groups/users) and `keycloak` (the
`jupyterlab_profiles` attribute) become the groups' `profiles`. Nebari had no budgets:
each group gets a conservative one, marked to review.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deploy.importers.nebari import defaults
from deploy.importers.nebari.keycloak import Realm
from deploy.importers.nebari.names import slug, unique
from deploy.importers.nebari.options import ImportOptions
from deploy.importers.nebari.profiles import ImportedProfile
from deploy.importers.nebari.report import Report
from deploy.importers.nebari.source import Source

DEFAULT_GROUP = "analyst"  # Keycloak's default group for new Nebari users


@dataclass
class People:
    groups: dict[str, dict] = field(default_factory=dict)
    users: list[dict] = field(default_factory=list)
    budgets: dict[str, dict] = field(default_factory=dict)
    todos: dict[tuple, str] = field(default_factory=dict)  # path in platform.yaml -> TODO text


@dataclass
class _Person:
    name: str
    email: str | None
    groups: list[str]
    profiles: list[str] = field(default_factory=list)  # display names granted to the user alone


def import_people(
    src: Source,
    realm: Realm | None,
    profiles: list[ImportedProfile],
    environments: list[str],
    options: ImportOptions,
    report: Report,
) -> People:
    people = People()
    group_names, persons = _sources(src, realm, options, people, report)
    group_names, persons = _rename(group_names, persons, report)
    if any(not p.groups for p in persons):
        if DEFAULT_GROUP not in group_names:
            group_names.append(DEFAULT_GROUP)
        for person in persons:
            if not person.groups:
                person.groups = [DEFAULT_GROUP]
                report.note(f"user {person.name!r} was in no group: put in {DEFAULT_GROUP!r} (Keycloak's default)")
    grants = _grants(realm, profiles, group_names, persons, report)
    open_profiles = [p.name for p in profiles if p.access == "all"]
    # Enough cores for two workers of the largest profile, so every profile can be used.
    cores = options.budget_max_cores or max([16, *(2 * p.cpu for p in profiles)])
    for group in group_names:
        admin = group in defaults.ADMIN_GROUPS
        people.groups[group] = {
            **({"admin": True} if admin else {}),
            "budget": group,
            "profiles": _ordered(profiles, open_profiles + grants.get(group, [])),
            "environments": list(environments),
        }
        people.budgets[group] = {
            "monthly_usd": options.budget_usd,
            "max_cores": cores,
            "alerts": [50, 80, 100],
            "on_exhausted": "stop",
        }
        people.todos[("budgets", group)] = (
            "TODO(import): Nebari had no budgets; a conservative default (--budget-usd): review"
        )
    report.invent(
        "budgets",
        f"one per group ({', '.join(group_names)}): ${options.budget_usd:g}/month, "
        f"{cores} cores (Nebari had none; anyone needs one to start Dask)",
    )
    _personal_grants(people, persons, profiles, report)
    for person in persons:
        user: dict = {"name": person.name}
        if person.email:
            user["email"] = person.email
        user["groups"] = person.groups
        budgets = [g for g in person.groups if people.groups.get(g, {}).get("budget")]
        if len(budgets) > 1:
            payer = next((g for g in budgets if g not in defaults.ADMIN_GROUPS), budgets[0])
            user["budget"] = payer
            report.note(f"user {person.name!r} is in groups {', '.join(budgets)}: budget {payer!r} pays")
        people.users.append(user)
    return people


def _sources(
    src: Source, realm: Realm | None, options: ImportOptions, people: People, report: Report
) -> tuple[list[str], list[_Person]]:
    if realm is not None:
        persons = []
        for user in realm.users:
            if not user.enabled:
                report.drop(f"keycloak user {user.username!r}", "disabled in Keycloak")
                continue
            persons.append(_Person(user.username, user.email, list(user.groups), list(user.profiles)))
        if realm.service_accounts:
            report.drop(f"keycloak: {realm.service_accounts} service account(s)", "services have their own tokens here")
        if not realm.users:
            report.note("the Keycloak export has no users: export them too (kc.sh export --users realm_file)")
        elif not any(set(p.groups) & set(defaults.ADMIN_GROUPS) for p in persons):
            report.note("nobody in the Keycloak export is in group admin or superadmin: add an admin")
        report.map(
            f"keycloak realm {realm.name!r}",
            "users, groups",
            f"{len(persons)} users, {len(realm.groups)} groups; credentials not read",
        )
        groups = list(dict.fromkeys([*realm.groups, *(g for p in persons for g in p.groups)]))
        return groups, persons
    users = src.mapping("security", "users")
    if users:  # QHub 0.3: people in the file
        persons = []
        for name, spec in users.items():
            spec = spec if isinstance(spec, dict) else {}
            path = ("security", "users", name)
            src.take(*path, "primary_group")
            src.take(*path, "secondary_groups")
            src.drop((*path, "uid"), "POSIX user ids: each user's VM has its own accounts")
            src.drop((*path, "password"), "password hashes are never copied: users set a password at first login")
            groups = [str(spec.get("primary_group") or "")] + [str(g) for g in spec.get("secondary_groups") or []]
            persons.append(_Person(str(name), None, [g for g in groups if g]))
        for group in src.mapping("security", "groups"):
            src.drop(("security", "groups", group, "gid"), "POSIX group ids have no equivalent")
        groups = list(
            dict.fromkeys([*map(str, src.mapping("security", "groups")), *(g for p in persons for g in p.groups)])
        )
        report.map("security.users", "users", f"{len(persons)} users; primary and secondary groups")
        report.map("security.groups", "groups", f"{len(groups)} groups")
        return groups, persons
    admin = options.admin or "admin"
    if not options.admin:
        people.todos[("users", 0, "name")] = "TODO(import): the first admin (--admin NAME)"
    report.invent(
        "users",
        f"only the admin {admin!r}: Nebari keeps users in Keycloak; pass --keycloak-export "
        "REALM.json, or add them with `platform users add NAME -g analyst`",
    )
    return list(defaults.KEYCLOAK_GROUPS), [_Person(admin, None, ["admin"])]


def _rename(groups: list[str], persons: list[_Person], report: Report) -> tuple[list[str], list[_Person]]:
    group_names: dict[str, str] = {}
    taken: set[str] = set()
    for group in groups:
        group_names[group] = unique(slug(group, "g"), taken)
        if group_names[group] != group:
            report.note(f"group {group!r} is now {group_names[group]!r} (platform.yaml names)")
    user_taken: set[str] = set()
    for person in persons:
        base = person.name.split("@", 1)[0] if "@" in person.name else person.name
        new = unique(slug(base, "u"), user_taken)
        if new != person.name:
            report.note(
                f"user {person.name!r} is now {new!r}: platform.yaml names are lower-case letters, "
                "digits, '-' and '_' (with GitHub or OIDC login, check the claim matches)"
            )
        person.name = new
        person.groups = list(dict.fromkeys(group_names[g] for g in person.groups if g in group_names))
        if person.email and "@" not in person.email:
            person.email = None
    return list(group_names.values()), persons


def _grants(
    realm: Realm | None, profiles: list[ImportedProfile], groups: list[str], persons: list[_Person], report: Report
) -> dict[str, list[str]]:
    """group -> profiles granted to it beyond the open ones."""
    grants: dict[str, list[str]] = {}
    for profile in profiles:
        if profile.access == "yaml":
            for group in profile.groups:
                name = slug(group, "g")
                if name not in groups:
                    groups.append(name)
                    report.note(f"profile {profile.name!r} names group {group!r}, which has no members: created")
                grants.setdefault(name, []).append(profile.name)
            report.map(
                f"{profile.source}.groups",
                f"groups.*.profiles: {profile.name}",
                f"granted to {', '.join(profile.groups) or 'no group'}",
            )
        elif profile.access == "keycloak":
            holders = [g for g, names in (realm.groups if realm else {}).items() if profile.display in names]
            for group in holders:
                grants.setdefault(slug(group, "g"), []).append(profile.name)
            if realm is None:
                for admin in (g for g in groups if g in defaults.ADMIN_GROUPS):
                    grants.setdefault(admin, []).append(profile.name)
                report.note(
                    f"profile {profile.name!r} had access `keycloak` (grants live in Keycloak): granted to "
                    "the admin group only; pass --keycloak-export to carry the grants over"
                )
    return grants


def _personal_grants(people: People, persons: list[_Person], profiles: list[ImportedProfile], report: Report) -> None:
    """Profiles granted to single users (`users:` in the profile, or a Keycloak user
    attribute) become a group `<profile>-users` holding just those users."""
    for profile in profiles:
        names = {slug(n.split("@", 1)[0], "u") for n in profile.users} if profile.access == "yaml" else set()
        members = [p for p in persons if p.name in names or profile.display in p.profiles]
        for missing in sorted(names - {p.name for p in persons}):
            report.note(
                f"profile {profile.name!r} names user {missing!r}, who is not imported: add them to "
                f"group {profile.name}-users"
            )
        if not members and not names:
            continue
        group = f"{profile.name}-users"[:63]
        people.groups[group] = {"profiles": [profile.name]}
        for person in members:
            person.groups.append(group)
        report.map(f"{profile.source}.users", f"groups.{group}", ", ".join(p.name for p in members) or "no members")


def _ordered(profiles: list[ImportedProfile], names: list[str]) -> list[str]:
    wanted = set(names)
    return [p.name for p in profiles if p.name in wanted]

"""A Keycloak realm export (what `kc.sh export --realm nebari --users realm_file` writes):
the users, their e-mails and groups, and the profiles groups grant through Nebari's
`jupyterlab_profiles` attribute. Credentials in the export are never read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from render.errors import ConfigErrors, ConfigIssue

PROFILES_ATTRIBUTE = "jupyterlab_profiles"


@dataclass
class KeycloakUser:
    username: str
    email: str | None
    enabled: bool
    groups: list[str]  # lowest-level names, as Nebari uses them
    profiles: list[str] = field(default_factory=list)


@dataclass
class Realm:
    name: str
    groups: dict[str, list[str]]  # group -> display names of the profiles it grants
    users: list[KeycloakUser]
    service_accounts: int = 0


def parse_realm(text: str, display: str) -> Realm:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigErrors([ConfigIssue(display, exc.lineno, exc.colno, "(json)", exc.msg)]) from None
    if not isinstance(data, dict) or "realm" not in data:
        raise ConfigErrors([ConfigIssue(display, 1, 1, "(root)", "not a Keycloak realm export (no `realm` key)")])
    groups: dict[str, list[str]] = {}
    for group in data.get("groups") or []:
        _walk_group(group, groups)
    users, service = [], 0
    for user in data.get("users") or []:
        if not isinstance(user, dict) or not user.get("username"):
            continue
        if user.get("serviceAccountClientId") or str(user["username"]).startswith("service-account-"):
            service += 1
            continue
        attributes = user.get("attributes") or {}
        users.append(
            KeycloakUser(
                username=str(user["username"]),
                email=user.get("email"),
                enabled=bool(user.get("enabled", True)),
                groups=[PurePosixPath(str(path)).name for path in user.get("groups") or []],
                profiles=[str(p) for p in attributes.get(PROFILES_ATTRIBUTE) or []],
            )
        )
    return Realm(str(data["realm"]), groups, users, service)


def _walk_group(group: object, into: dict[str, list[str]]) -> None:
    if not isinstance(group, dict) or not group.get("name"):
        return
    attributes = group.get("attributes") or {}
    into.setdefault(str(group["name"]), []).extend(str(p) for p in attributes.get(PROFILES_ATTRIBUTE) or [])
    for sub in group.get("subGroups") or []:
        _walk_group(sub, into)

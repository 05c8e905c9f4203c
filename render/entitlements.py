"""Who may use what: derived from groups, the one place these rules are written down.

- profiles and environments: the union over the user's groups, in declaration order;
- admin: a member of any group with `admin: true`;
- budget: the user's own `budget` if set, else the one budget among their groups'
  (validation rejects a user whose groups name different budgets and who has none);
  None means the user may not start Dask clusters at all.
"""

from __future__ import annotations

from render.schema import Platform, User


def _groups(platform: Platform, user: User):
    return [platform.groups[name] for name in user.groups if name in platform.groups]


def profiles_of(platform: Platform, user: User) -> list[str]:
    granted = {name for group in _groups(platform, user) for name in group.profiles}
    return [name for name in platform.profiles if name in granted]


def environments_of(platform: Platform, user: User) -> list[str]:
    granted = {name for group in _groups(platform, user) for name in group.environments}
    return [name for name in platform.environments if name in granted]


def is_admin(platform: Platform, user: User) -> bool:
    return any(group.admin for group in _groups(platform, user))


def budget_of(platform: Platform, user: User) -> str | None:
    if user.budget:
        return user.budget
    return next((group.budget for group in _groups(platform, user) if group.budget), None)


def members_of(platform: Platform, group: str) -> list[str]:
    return [user.name for user in platform.users if group in user.groups]


def default_profile_for(platform: Platform, user: User, preferred: str) -> str | None:
    """`preferred` if the user may use it, else their first granted profile."""
    granted = profiles_of(platform, user)
    if preferred in granted:
        return preferred
    return granted[0] if granted else None


def storage_of(platform: Platform, user: User) -> dict[str, str]:
    """Storage integration name -> "read" | "read-write" for the user; read-write wins."""
    granted: dict[str, str] = {}
    for storage in platform.integrations.storage:
        for group in user.groups:
            access = storage.access.get(group)
            if access and granted.get(storage.name) != "read-write":
                granted[storage.name] = access
    return granted

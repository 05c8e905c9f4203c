"""What a change to platform.yaml means, in words: "user dave added to ocean".

Pure: two validated `Platform`s in, sections of sentences out. Used by the pull-request
comment so that reviewers read the change in the platform's own terms, not as a YAML diff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from render.schema import Platform, Profile
from render.units import format_memory

SECTIONS = ("people", "groups", "budgets", "profiles", "environments", "platform")


@dataclass
class Changes:
    """Sentences per section, in a stable order; empty sections mean nothing changed."""

    sections: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in SECTIONS})

    def add(self, section: str, sentence: str) -> None:
        self.sections[section].append(sentence)

    def __bool__(self) -> bool:
        return any(self.sections.values())


def describe(base: Platform | None, head: Platform) -> Changes:
    """Every difference between `base` (None: no platform before) and `head`, in words."""
    changes = Changes()
    if base is None:
        changes.add("platform", f"new platform `{head.name}` (target {head.target})")
        return changes
    _users(changes, base, head)
    _named(changes, "groups", "group", base.groups, head.groups, _plain_fields)
    _named(changes, "budgets", "budget", base.budgets, head.budgets, _plain_fields)
    _named(changes, "profiles", "profile", base.profiles, head.profiles, _profile_fields)
    _named(changes, "environments", "environment", base.environments, head.environments, _plain_fields)
    _platform(changes, base, head)
    return changes


def _users(changes: Changes, base: Platform, head: Platform) -> None:
    before = {user.name: user for user in base.users}
    after = {user.name: user for user in head.users}
    for name, user in after.items():
        if name not in before:
            where = f" to {', '.join(user.groups)}" if user.groups else " (in no group)"
            changes.add("people", f"user `{name}` added{where}")
    for name in before:
        if name not in after:
            changes.add("people", f"user `{name}` removed")
    for name, user in after.items():
        old = before.get(name)
        if old is None:
            continue
        for group in user.groups:
            if group not in old.groups:
                changes.add("people", f"user `{name}` added to {group}")
        for group in old.groups:
            if group not in user.groups:
                changes.add("people", f"user `{name}` removed from {group}")
        if old.budget != user.budget:
            changes.add("people", f"user `{name}`: budget {_show(old.budget)} -> {_show(user.budget)}")
        if old.email != user.email:
            changes.add("people", f"user `{name}`: email {_show(old.email)} -> {_show(user.email)}")


def _named(
    changes: Changes,
    section: str,
    noun: str,
    before: Mapping[str, object],
    after: Mapping[str, object],
    fields: Callable[[object], dict[str, object]],
) -> None:
    for name in after:
        if name not in before:
            changes.add(section, f"{noun} `{name}` added")
    for name in before:
        if name not in after:
            changes.add(section, f"{noun} `{name}` removed")
    for name, new in after.items():
        if name in before:
            for sentence in _field_changes(fields(before[name]), fields(new)):
                changes.add(section, f"{noun} `{name}`: {sentence}")


def _field_changes(old: dict[str, object], new: dict[str, object]) -> Iterable[str]:
    for key in dict.fromkeys([*old, *new]):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, list) and isinstance(b, list):
            added = [item for item in b if item not in a]
            removed = [item for item in a if item not in b]
            if added:
                yield f"{key} + {', '.join(map(str, added))}"
            if removed:
                yield f"{key} - {', '.join(map(str, removed))}"
            if not added and not removed:
                yield f"{key} reordered"
        else:
            yield f"{key} {_show(a)} -> {_show(b)}"


def _plain_fields(model: object) -> dict[str, object]:
    return model.model_dump(mode="json")  # type: ignore[attr-defined]


def _profile_fields(model: object) -> dict[str, object]:
    assert isinstance(model, Profile)
    data = _plain_fields(model)
    data["memory"] = format_memory(model.memory)
    instance = data.pop("instance") or {}
    for cloud, kind in instance.items():
        data[f"instance.{cloud}"] = kind
    return data


def _platform(changes: Changes, base: Platform, head: Platform) -> None:
    """Top-level settings outside the five people/money/machine sections."""
    for key in ("name", "target", "cloud", "hub", "dask", "ci", "integrations"):
        old, new = getattr(base, key), getattr(head, key)
        if old == new:
            continue
        old_data = old.model_dump(mode="json") if hasattr(old, "model_dump") else old
        new_data = new.model_dump(mode="json") if hasattr(new, "model_dump") else new
        if isinstance(old_data, dict) and isinstance(new_data, dict):
            for sentence in _field_changes(_flatten(old_data), _flatten(new_data)):
                changes.add("platform", f"{key}.{sentence}")
        else:
            changes.add("platform", f"{key} {_show(old_data)} -> {_show(new_data)}")


def _flatten(data: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _show(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        return str(value) if value else "(none)"
    return str(value)

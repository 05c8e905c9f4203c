"""`platform validate`'s lock check: a missing or stale entry, located at the environment."""

from __future__ import annotations

from pathlib import Path

from deploy.environments import lock
from render import loader
from render.errors import ConfigIssue
from render.schema import Platform


def lock_issues(config_path: Path, display: str, platform: Platform) -> list[ConfigIssue]:
    """Problems of the lock next to `config_path`; none when there is no lock at all."""
    path = lock.lock_path(config_path)
    try:
        entries = lock.read(path)
    except lock.LockError as exc:
        return [ConfigIssue(display, 1, 1, "environments", str(exc))]
    if entries is None:
        return []
    positions = loader.load(config_path, display).positions
    issues = []
    for name, message in lock.problems(platform, entries).items():
        line, col = positions.of_key(("environments", name))
        issues.append(ConfigIssue(display, line, col, f"environments.{name}", message))
    for name in sorted(set(entries) - set(platform.environments)):
        line, col = positions.of_key(("environments",))
        issues.append(ConfigIssue(
            display, line, col, "environments",
            f"environments.lock has {name!r}, which platform.yaml no longer declares; run `platform lock`",
        ))
    return issues

"""Apply: build every locked environment (once) and publish where each one's Python is.

Locked environments live under `<state>/environments/locked/<build key>`, the key being
a hash of the lock entry: an unchanged entry is never rebuilt, a changed one gets a new
directory (running clusters keep the old one). `index.json` beside them maps each
environment name to its Python; the gateway and the spawner read it at run time.
Without an `environments.lock` every environment runs on the platform's own Python
(fine for a first local try; `platform lock` makes them real).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from deploy.environments import build
from deploy.environments.lock import Entry
from deploy.files import write_atomic
from render.schema import Platform

INDEX = "index.json"


def environments_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "environments"


def ensure_environments(platform: Platform, lock: dict[str, Entry] | None, state_dir: Path) -> dict[str, str]:
    """{environment name: path of its Python}, building what is missing. Raises
    deploy.environments.uv.UvError (nothing half-built is left) when a build fails."""
    root = environments_dir(state_dir)
    pythons: dict[str, str] = {}
    for name in platform.environments:
        entry = None if lock is None else lock.get(name)
        if entry is None:
            pythons[name] = sys.executable
            continue
        target = root / "locked" / entry.build_key
        lines, hashed = entry.install_lines()
        pythons[name] = str(build.build(target, entry.python, list(lines), require_hashes=hashed))
    write_atomic(root / INDEX, json.dumps(pythons, indent=2, sort_keys=True) + "\n", mode=0o600)
    return pythons


def apply_environments(platform: Platform, config_path: Path, state_dir: Path) -> dict[str, str]:
    """For `platform up`/apply: read the lock next to platform.yaml and ensure it.

    Raises ValueError (an unreadable lock) or uv.UvError (a failed build)."""
    from deploy.environments import lock

    entries = lock.read(lock.lock_path(Path(config_path)))
    problems = {} if entries is None else lock.problems(platform, entries)
    if problems:
        raise lock.LockError("; ".join(f"environments.{name}: {text}" for name, text in problems.items()))
    return ensure_environments(platform, entries, Path(state_dir))

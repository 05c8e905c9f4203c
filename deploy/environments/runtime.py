"""Run-time lookups for the gateway and the spawner: which Python runs an environment.

Reads only files written by apply (`ensure_environments`) and by the gateway's sync
builder, under GRATICULE_STATE_DIR; no platform model needed, so it is cheap to call
for every cluster.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from deploy.environments.build import python_of
from deploy.environments.ensure import INDEX, environments_dir
from deploy.runtime import env

SYNC_KEY = re.compile(r"^[0-9a-f]{32}$")


def state_dir() -> Path:
    return Path(os.environ[env.STATE_DIR])


def pythons(state: Path | None = None) -> dict[str, str]:
    """{environment name: Python path} as last applied; empty before the first apply."""
    path = environments_dir(state or state_dir()) / INDEX
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def python_for_environment(name: str | None, state: Path | None = None) -> str:
    """The Python of a named environment (the platform's own when none is known)."""
    if not name:
        return sys.executable
    return pythons(state).get(name, sys.executable)


def sync_dir(user: str, key: str, state: Path | None = None) -> Path:
    if not SYNC_KEY.match(key) or not re.match(r"^[A-Za-z0-9._@-]+$", user):
        raise ValueError(f"invalid synced environment {key!r}")
    return environments_dir(state or state_dir()) / "sync" / user / key


def python_for_sync(user: str, key: str, state: Path | None = None) -> str | None:
    """The Python of a user's synced environment, None if it was never built."""
    python = python_of(sync_dir(user, key, state))
    return str(python) if python.exists() else None

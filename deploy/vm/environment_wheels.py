"""Locked environments' wheels for the launched machines, published by `platform apply`.

A Dask scheduler or worker machine installs its cluster's environment from the artifacts
bucket (`environments/<key>/`, deploy.cloud.machine_boot): the lock entry's hashed
x86_64 lines, fetched as wheels for the machines' Python (CPython 3.11 on Debian 12, like
the hub's wheelhouse) once per key under the state directory, uploaded only when absent.
The gateway finds each environment's key in `environments/wheels.json` of the published
configuration ({environment: key}).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path

from deploy.environments.lock import Entry
from deploy.files import read_json_object
from deploy.vm import wheelhouse
from deploy.vm.wheelhouse import Wheelhouse

MACHINE = "x86_64"  # the machines' image (modules/aws/templates.py); arm profiles are not covered yet
PYTHON = "3.11"  # the image's python3
INDEX_FILE = "environments/wheels.json"  # in the published configuration: {environment: key}


def published_keys(build_dir: Path) -> dict[str, str]:
    """{environment: key} as apply last published it into the build (read it each time: each
    apply rewrites it); {} before the first. The gateway's and the notebook spawner's lookup."""
    return read_json_object(build_dir / INDEX_FILE)


def machine_key(entry: Entry) -> str | None:
    """The wheel-cache key of an entry on the machines: its build key for x86_64 (the same
    as `Entry.build_key` on an x86_64 host); None when it cannot be installed there."""
    lines = entry.machines.get(MACHINE)
    if not lines or entry.python != PYTHON:
        return None
    canonical = json.dumps({"python": entry.python, "packages": list(lines)}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def ensure_wheels(entry: Entry, cache: Path, progress: Callable[[str], None] = lambda _: None) -> Wheelhouse | None:
    """The entry's wheels under `cache/<key>/` (fetched once, hashes checked)."""
    key = machine_key(entry)
    if key is None:
        return None
    return wheelhouse.fetched_once(cache, key, "\n".join(entry.machines[MACHINE]) + "\n", None,
                                   lambda: progress(f"environment {key[:12]}: fetching its wheels for the machines"))


def publish_all(entries: Mapping[str, Entry], cache: Path, upload: Callable[[str, Wheelhouse], int],
                progress: Callable[[str], None] = lambda _: None) -> dict[str, str]:
    """Every locked environment's wheels uploaded (`upload(key, wheels)`); {environment: key}."""
    keys: dict[str, str] = {}
    for name, entry in sorted(entries.items()):
        wheels = ensure_wheels(entry, cache, progress)
        if wheels is None:
            progress(f"environment {name}: not installable on the machines (needs Python {PYTHON} on {MACHINE})")
            continue
        if upload(wheels.id, wheels):
            progress(f"environment {name}: {len(wheels.files)} wheels uploaded for the machines")
        keys[name] = wheels.id
    return keys


def index_file(keys: Mapping[str, str]) -> bytes:
    return (json.dumps(dict(keys), indent=2, sort_keys=True) + "\n").encode()

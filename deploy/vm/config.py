"""The published configuration (deploy.vm.publish) as the hub VM reads it."""

from __future__ import annotations

import json

from deploy.files import replace_tree_atomic
from deploy.runtime.state import Layout
from deploy.vm.publish import CURRENT, config_version
from deploy.vm.stores import ObjectStore


def current(store: ObjectStore) -> dict[str, str]:
    """{"version", "wheelhouse"} of config/current.json."""
    return json.loads(store.get(CURRENT))


def fetch(store: ObjectStore, version: str) -> dict[str, bytes]:
    """Every file of `config/<version>/`, checked against the version (its sha256)."""
    prefix = f"config/{version}/"
    files = {key[len(prefix):]: store.get(key) for key in store.keys(prefix)}
    if config_version(files) != version:
        raise ValueError(f"configuration {version[:12]} in {store.url} is incomplete or altered")
    return files


def install(layout: Layout, files: dict[str, bytes], version: str) -> None:
    """Swap `<state>/build` for these files in one rename; the version beside them."""
    replace_tree_atomic(layout.build, {**files, "VERSION": (version + "\n").encode()})


def installed_version(layout: Layout) -> str | None:
    try:
        return (layout.build / "VERSION").read_text().strip()
    except OSError:
        return None

"""Every class path that render writes for JupyterHub and dask-gateway to import (gateway
backend, spawner, authenticator) names a class that imports, on every target."""

from __future__ import annotations

import importlib
import json

import pytest

from render import gateway_config, hub_config
from render.validate import validate_text


def _class_paths(document: object) -> set[str]:
    """Values of `class` / `*_class` keys anywhere in a rendered JSON document."""
    if isinstance(document, dict):
        found = {
            value for key, value in document.items() if (key == "class" or key.endswith("_class"))
            and isinstance(value, str)
        }
        for value in document.values():
            found |= _class_paths(value)
        return found
    if isinstance(document, list):
        return set().union(*(_class_paths(value) for value in document)) if document else set()
    return set()


def _import(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("target", ["local", "aws", "gcp"])
def test_every_rendered_class_path_imports(example_text: str, target: str):
    platform = validate_text(example_text.replace("target: local ", f"target: {target:<6}"))
    files = {**hub_config.render_hub(platform, target), **gateway_config.render_gateway(platform, target)}
    paths = set()
    for path, data in files.items():
        if path.endswith(".json"):
            paths |= _class_paths(json.loads(data))
    assert len(paths) >= 3, paths  # the gateway backend, the spawner, the authenticator
    for path in sorted(paths):
        assert isinstance(_import(path), type), path


def test_every_class_render_can_name_imports():
    named = [*gateway_config.BACKEND_CLASSES.values(), hub_config.SPAWNER, hub_config.LOCAL_AUTHENTICATOR,
             hub_config.GITHUB_AUTHENTICATOR, hub_config.OIDC_AUTHENTICATOR]
    for path in named:
        assert isinstance(_import(path), type), path

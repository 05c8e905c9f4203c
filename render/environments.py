"""Software environments: `environments/<name>.json`, each platform.yaml environment resolved
into the exact requirement list that `platform lock` pins and apply builds.

Every environment also carries what the platform itself needs on schedulers, workers and
notebook kernels: the platform's own dask, distributed and dask-gateway (the scheduler
preload) and ipykernel. A declared package that contradicts the platform's dask versions is
a located validation error (`check_packages`, called from `render.checks`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from render.schema import Environment, Platform

# The versions the platform runs (pinned in pyproject.toml; tests/test_environments.py
# checks they match what is installed). Schedulers, workers and clients must agree on them.
PLATFORM_PINS: dict[str, str] = {
    "dask": "2026.8.0",
    "distributed": "2026.8.0",
    "dask-gateway": "2026.3.0",
}
# Needed in every environment but free to float with the lock.
IMPLICIT_PACKAGES: tuple[str, ...] = ("ipykernel",)


def render_environments(platform: Platform) -> dict[str, bytes]:
    return {
        f"environments/{name}.json": _json(resolved_spec(name, environment))
        for name, environment in platform.environments.items()
    }


def requirements_of(environment: Environment) -> list[str]:
    """Declared packages plus the platform's pins and implicit packages, in a stable order."""
    pins = [f"{name}=={version}" for name, version in PLATFORM_PINS.items()]
    return [*environment.packages, *pins, *IMPLICIT_PACKAGES]


def spec_hash(python: str, requirements: list[str]) -> str:
    """What `platform lock` resolved from: a changed spec makes the lock entry stale."""
    canonical = json.dumps({"python": python, "requirements": requirements}, sort_keys=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def resolved_spec(name: str, environment: Environment) -> dict:
    requirements = requirements_of(environment)
    return {
        "name": name,
        "python": environment.python,
        "packages": list(environment.packages),
        "platform_pins": dict(PLATFORM_PINS),
        "requirements": requirements,
        "spec_hash": spec_hash(environment.python, requirements),
    }


def check_packages(root: dict) -> Iterator[tuple[tuple[object, ...], str]]:
    """(path, message) for each declared package that excludes the platform's dask versions.

    Reads the raw tree defensively: malformed sections are pydantic's to report."""
    environments = root.get("environments")
    if not isinstance(environments, dict):
        return
    for name, environment in environments.items():
        packages = environment.get("packages") if isinstance(environment, dict) else None
        for index, text in enumerate(packages if isinstance(packages, list) else []):
            message = _conflict(text)
            if message:
                yield ("environments", name, "packages", index), message


def _conflict(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return None  # the schema reports it
    name = canonicalize_name(requirement.name)
    wanted = PLATFORM_PINS.get(name)
    if wanted is None or not requirement.specifier:
        return None
    if requirement.specifier.contains(wanted, prereleases=True):
        return None
    return (
        f"{text!r} excludes {name} {wanted}, the version the platform runs "
        f"(schedulers, workers and clients must agree); use {name}=={wanted} or leave it unpinned"
    )


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()

"""Nebari's conda environments -> graticule environments (Python version + PyPI packages).

Kept: the Python minor version (raised to the oldest the platform supports), every
package PyPI has (conda pins as PEP 440), `pip:` entries. Dropped, each reported:
channels, conda-only packages, Nebari's own Dask packages and the Dask pins the platform
manages itself (schedulers, workers and clients must run the platform's versions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from deploy.importers.nebari import conda, defaults
from deploy.importers.nebari.names import slug
from deploy.importers.nebari.report import Report
from deploy.importers.nebari.source import Source
from render.environments import PLATFORM_PINS
from render.errors import dotted

# pyproject.toml's requires-python: environments run the platform's own dask on them.
OLDEST_PYTHON = "3.11"
NEBARI_PACKAGES = {"nebari-dask", "qhub-dask", "dask-gateway", "dask-gateway-server"}
MANAGED = {canonicalize_name(name) for name in PLATFORM_PINS}
FALLBACK_PACKAGE = "dask[distributed]"


@dataclass
class ImportedEnvironment:
    name: str
    python: str
    packages: list[str] = field(default_factory=list)
    todos: dict[str, str] = field(default_factory=dict)


def import_environments(src: Source, report: Report) -> list[ImportedEnvironment]:
    items = src.mapping("environments")
    defaulted = not items
    if defaulted:
        items = defaults.ENVIRONMENTS
        report.note("no `environments` in the file: imported Nebari's two default conda environments")
    result = []
    for key, spec in items.items():
        if isinstance(spec, dict):
            result.append(_environment(src, ("environments", key), spec, defaulted, report))
    return result


def _environment(src: Source, path: tuple, spec: dict, defaulted: bool, report: Report) -> ImportedEnvironment:
    label = ("(Nebari default) " if defaulted else "") + dotted(path)

    def drop(sub: tuple, reason: str) -> None:
        if defaulted:
            report.drop(f"{label}{_suffix(sub)}", reason)
        else:
            src.drop((*path, *sub), reason)

    if not defaulted:
        src.take(*path, "name")
    env = ImportedEnvironment(slug(str(spec.get("name") or path[-1]).removesuffix(".yaml")), OLDEST_PYTHON)
    if spec.get("channels"):
        drop(("channels",), "channels: packages come from PyPI, resolved by uv")
    python = None
    for index, dependency in enumerate(spec.get("dependencies") or []):
        if isinstance(dependency, dict):
            for pip_index, requirement in enumerate(dependency.get("pip") or []):
                _pip(env, str(requirement), (index, "pip", pip_index), drop, src, path, defaulted, report, label)
            continue
        name, rest = conda.split(str(dependency))
        if name.lower() == "python":
            python = conda.python_minor(rest)
            _take(src, path, defaulted, ("dependencies", index))
            continue
        managed = _managed(env, name, rest, ("dependencies", index), drop, report, label)
        if managed:
            if managed == "kept":
                _take(src, path, defaulted, ("dependencies", index))
            continue
        converted = conda.convert(str(dependency))
        if converted.requirement is None:
            drop(("dependencies", index), f"{dependency!r}: {converted.note}")
            continue
        _take(src, path, defaulted, ("dependencies", index))
        env.packages.append(converted.requirement)
        if converted.note:
            report.note(f"{label}: {dependency!r} -> {converted.requirement!r} ({converted.note})")
    env.packages = list(dict.fromkeys(env.packages))  # conda and pip may both list a package
    env.python = _python(python, label, env, report)
    if not env.packages:
        env.packages.append(FALLBACK_PACKAGE)
        env.todos["packages"] = "TODO(import): every package was conda-only or managed; add yours"
        report.invent(f"environments.{env.name}.packages", f"{FALLBACK_PACKAGE} (nothing else carried over)")
    keys = () if defaulted else [key for key in ("name", "dependencies") if key in spec]
    report.map(label, f"environments.{env.name}", f"python {env.python}, {len(env.packages)} packages", keys=keys)
    return env


def _suffix(sub: tuple) -> str:
    return dotted(("x", *sub))[1:]


def _take(src: Source, path: tuple, defaulted: bool, sub: tuple) -> None:
    if not defaulted:
        src.take(*path, *sub)


def _managed(env, name: str, rest: str, sub: tuple, drop, report: Report, label: str) -> str | None:
    """Nebari's own Dask packages go ('dropped'); dask/distributed stay ('kept'), without the
    pin the platform owns; None for every other package."""
    canonical = canonicalize_name(name)
    if canonical in NEBARI_PACKAGES:
        drop(
            sub,
            f"{name}{rest}: Nebari's (or QHub's) Dask bundle; the platform installs dask, distributed and "
            "dask-gateway at its own versions",
        )
        return "dropped"
    if canonical in MANAGED:
        env.packages.append(name)
        if rest:
            report.note(f"{label}: pin {name}{rest} dropped: the platform runs {name} {PLATFORM_PINS[canonical]}")
        return "kept"
    return None


def _pip(env, requirement: str, sub: tuple, drop, src, path, defaulted, report: Report, label: str) -> None:
    full = ("dependencies", *sub)
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        drop(full, f"pip entry {requirement!r} is not a PEP 508 requirement (write it as 'name @ URL')")
        return
    managed = _managed(env, parsed.name, str(parsed.specifier), full, drop, report, label)
    if managed != "dropped":
        _take(src, path, defaulted, full)
    if managed is None:
        env.packages.append(requirement)


def _python(pinned: str | None, label: str, env: ImportedEnvironment, report: Report) -> str:
    if pinned is None:
        env.todos["python"] = f"TODO(import): no python pin in Nebari's environment; {OLDEST_PYTHON} assumed"
        report.invent(f"environments.{env.name}.python", f"{OLDEST_PYTHON} (no python pin)")
        return OLDEST_PYTHON
    if Version(pinned) < Version(OLDEST_PYTHON):
        report.note(f"{label}: python {pinned} raised to {OLDEST_PYTHON}, the oldest the platform supports")
        return OLDEST_PYTHON
    return pinned

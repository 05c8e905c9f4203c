"""Compose every renderer into one build: relative path under build/ -> bytes.

Each step is a pure function owned by one module; they are imported only when a render
runs (so `platform validate` stays fast) and a missing one fails loudly, by name. The
build ends with `manifest.json`: package version, target, and sha256 of the validated
model and of every file. No timestamps: the same input gives the same bytes.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import PurePosixPath

from render.errors import MissingPrerequisite
from render.schema import Platform, Target

MANIFEST = "manifest.json"


class RenderError(Exception):
    """A render step is missing, failed, or produced something outside its own folder."""


@dataclass(frozen=True)
class Step:
    module: str
    function: str
    prefix: str  # every path the step returns starts with this
    takes_target: bool = True


STEPS: tuple[Step, ...] = (
    Step("render.terraform", "synthesize_target", "terraform/"),
    Step("render.hub_config", "render_hub", "hub/"),
    Step("render.gateway_config", "render_gateway", "gateway/"),
    Step("render.workers", "render_workers", "workers/"),
    Step("render.environments", "render_environments", "environments/", takes_target=False),
    Step("render.job_spec", "render_jobs", "jobs/", takes_target=False),
    Step("render.hub_vm", "render_hub_vm", "hub-vm/"),
)


def render(platform: Platform, target: Target | None = None) -> dict[str, bytes]:
    """Every file of the build for `target` (default: the file's own), manifest included."""
    target = target or platform.target
    files: dict[str, bytes] = {}
    for step in STEPS:
        function = _load(step)
        arguments = (platform, target) if step.takes_target else (platform,)
        _merge(files, step, _run(step, function, *arguments))
    terraform = {path: data for path, data in files.items() if path.startswith("terraform/")}
    cost = Step("render.cost", "render_cost", "cost.json")
    _merge(files, cost, _run(cost, _load(cost), platform, target, terraform))
    files[MANIFEST] = manifest(platform, target, files)
    return dict(sorted(files.items()))


def render_available(platform: Platform, target: Target | None = None) -> tuple[dict[str, bytes], list[str]]:
    """`render`, or when some step's module is not there yet, the files of the steps that
    are (no cost.json, no manifest) and one message per missing step."""
    try:
        return render(platform, target), []
    except RenderError as exc:
        if "is missing" not in str(exc):
            raise
    target = target or platform.target
    files: dict[str, bytes] = {}
    missing: list[str] = []
    for step in STEPS:
        try:
            function = _load(step)
        except RenderError as exc:
            missing.append(str(exc))
            continue
        arguments = (platform, target) if step.takes_target else (platform,)
        files.update(_run(step, function, *arguments))
    return files, missing


def manifest(platform: Platform, target: str, files: dict[str, bytes]) -> bytes:
    document = {
        "graticule": version(),
        "target": target,
        "platform_sha256": model_digest(platform),
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def model_digest(platform: Platform) -> str:
    """sha256 of the validated model: comments, key order and spelling of units don't count."""
    canonical = json.dumps(
        platform.model_dump(mode="json", by_alias=True),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def version() -> str:
    try:
        return metadata.version("graticule")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _load(step: Step) -> Callable[..., dict[str, bytes]]:
    try:
        module = importlib.import_module(step.module)
    except ModuleNotFoundError as exc:
        if exc.name != step.module:
            raise  # the renderer exists but one of its own imports is missing: say that instead
        raise RenderError(
            f"render step {step.module}.{step.function} is missing: module {step.module} does not exist"
        ) from None
    function = getattr(module, step.function, None)
    if not callable(function):
        raise RenderError(f"render step {step.module}.{step.function} is missing: no such function")
    return function


def _run(step: Step, function: Callable[..., dict[str, bytes]], *arguments: object) -> dict[str, bytes]:
    try:
        return function(*arguments)
    except (RenderError, MissingPrerequisite):
        raise
    except Exception as exc:
        raise RenderError(f"{step.module}.{step.function} failed: {type(exc).__name__}: {exc}") from exc


def _merge(files: dict[str, bytes], step: Step, produced: object) -> None:
    where = f"{step.module}.{step.function}"
    if not isinstance(produced, dict):
        raise RenderError(f"{where} returned {type(produced).__name__}, expected dict[str, bytes]")
    for path, data in produced.items():
        if not isinstance(path, str) or not isinstance(data, bytes):
            raise RenderError(f"{where} returned {path!r}: expected a str path and bytes")
        pure = PurePosixPath(path)
        if pure.is_absolute() or ".." in pure.parts or str(pure) != path or not path.startswith(step.prefix):
            raise RenderError(f"{where} returned {path!r}: paths must be relative, under {step.prefix!r}")
        if path in files or path == MANIFEST:
            raise RenderError(f"{where} returned {path!r}, which another step already wrote")
        files[path] = data

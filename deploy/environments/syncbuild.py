"""The gateway's side of package sync: build (or reuse) a user's environment with uv.

The SDK sends the Python minor version, the pinned requirements of everything installed
and wheels of its local packages. Exact versions are tried first; a requirement the
index cannot satisfy is relaxed (pinned -> any version -> left out), never a critical
one (the SDK then reports the difference: critical ones fail, others warn). A Python
minor the machine does not have falls back to the gateway's own (the SDK fails on it).
Built environments are per user and key, so nobody can plant packages in another's.
A `progress` (the gateway's build log, which the SDK follows) gets the build's steps and
uv's output while it runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from deploy.environments import build, runtime, uv
from deploy.errors import RuntimeFailure

REPORT = "graticule-sync.json"
_OFFENDER = re.compile(
    r"(?:no version of|no versions of)\s+([A-Za-z0-9][A-Za-z0-9._-]*)"
    r"|([A-Za-z0-9][A-Za-z0-9._-]*)\s+was not found",
    re.IGNORECASE,
)
_WHEEL_NAME = re.compile(r"^[A-Za-z0-9_.+-]+\.whl$")


class SyncBuildError(RuntimeFailure, RuntimeError):
    """What the user sees when their environment cannot be built. `interrupted`: the build
    was stopped from outside (the gateway restarting), so the SDK starts it once more."""

    def __init__(self, message: str, *, interrupted: bool = False) -> None:
        super().__init__(message)
        self.interrupted = interrupted


INTERRUPTED = "the build was interrupted, start the cluster again"


def raise_if_interrupted(exc: uv.UvError) -> None:
    """uv killed from outside (the gateway restarting, a re-apply), not refusing the set: the
    SDK starts such a build once more, and neither relaxing a pin nor blaming the wheels would help."""
    if exc.interrupted:
        raise SyncBuildError(f"{INTERRUPTED}: {exc}", interrupted=True) from None


def report(user: str, key: str, state: Path | None = None) -> dict | None:
    """The built environment's report (python, installed versions), None if not built."""
    path = runtime.sync_dir(user, key, state) / REPORT
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def available_python(minor: str) -> str:
    """`minor` if uv finds such an interpreter here, else the gateway's own minor."""
    try:
        uv.run("python", "find", minor)
        return minor
    except uv.UvError:
        return f"{sys.version_info.major}.{sys.version_info.minor}"


def _name(requirement: str) -> str | None:
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return None


def _relax(requirements: list[str], offender: str, critical: set[str]) -> tuple[list[str], str]:
    """One step looser for `offender`: name==v -> name -> dropped."""
    for index, line in enumerate(requirements):
        if _name(line) != offender:
            continue
        if offender in critical:
            raise SyncBuildError(f"{line} is not available to the gateway, and it must match exactly")
        requirement = Requirement(line)
        if requirement.specifier or requirement.url:
            return [*requirements[:index], requirement.name, *requirements[index + 1 :]], f"{line} -> any version"
        return [*requirements[:index], *requirements[index + 1 :]], f"{line} left out"
    raise SyncBuildError(f"uv could not install {offender}")


class _UvHintsDropped:
    """uv's lines minus its hints for a local shell ("Activate with: source ..."), which
    mean nothing to the user following the build from a laptop."""

    def __init__(self, progress: build.Progress):
        self.progress = progress

    def step(self, title: str) -> None:
        self.progress.step(title)

    def line(self, text: str) -> None:
        if text.strip() and not text.startswith("Activate with:"):
            self.progress.line(text)


def build_synced(user: str, key: str, python: str, requirements: list[str],
                 wheels: dict[str, bytes], critical: list[str], state: Path | None = None,
                 progress: build.Progress | None = None) -> dict:
    """Build the environment (unless built) and return its report."""
    existing = report(user, key, state)
    if existing is not None:
        return existing
    started = time.monotonic()
    progress = _UvHintsDropped(progress) if progress is not None else None
    for line in requirements:
        if _name(line) is None:
            raise SyncBuildError(f"not a requirement: {line!r}")
    critical_names = {canonicalize_name(name) for name in critical}
    local_names = set()
    chosen = available_python(python)
    with tempfile.TemporaryDirectory(prefix="graticule-wheels-") as tmp:
        paths = []
        for filename, data in sorted(wheels.items()):
            if not _WHEEL_NAME.match(filename):
                raise SyncBuildError(f"not a wheel file name: {filename!r}")
            path = Path(tmp, filename)
            path.write_bytes(data)
            paths.append(path)
            local_names.add(canonicalize_name(filename.split("-")[0]))
        pending = [line for line in requirements if _name(line) not in local_names]
        relaxed: list[str] = []
        for _ in range(len(pending) + 1):
            try:
                build.build(runtime.sync_dir(user, key, state), chosen, pending, paths, exact=False,
                            finish=lambda env: write_report(env, relaxed, progress), progress=progress)
                break
            except uv.UvError as exc:
                raise_if_interrupted(exc)
                match = _OFFENDER.search(str(exc))
                if not match:
                    raise SyncBuildError(f"uv could not build the environment: {_from_error(str(exc))}") from None
                offender = canonicalize_name(match.group(1) or match.group(2))
                pending, what = _relax(pending, offender, critical_names)
                relaxed.append(what)
                if progress is not None:
                    progress.step(f"uv could not install {offender}; trying again with {what}")
        else:
            raise SyncBuildError("uv could not build the environment")
    if progress is not None:
        progress.step(f"environment ready in {time.monotonic() - started:.1f} s")
    return report(user, key, state) or {}


def _from_error(text: str) -> str:
    """uv's message from its `error:` line on (what came before was in the build's log)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("error:")), 0)
    return "\n".join(lines[start:])


def write_report(env: Path, relaxed: list[str], progress: build.Progress | None) -> None:
    if progress is not None:
        progress.step("recording the installed versions")
    listing = json.loads(uv.run("pip", "list", "--format", "json", "--python", str(build.python_of(env))))
    version = subprocess.run(
        [str(build.python_of(env)), "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    document = {
        "python": version,
        "installed": {canonicalize_name(item["name"]): item["version"] for item in listing},
        "relaxed": relaxed,
    }
    (env / REPORT).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")

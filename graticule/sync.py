"""Package sync: run a cluster in a copy of this Python environment.

1. capture: every installed distribution (name, version); packages installed from an
   index are pinned by version, local ones (editable or from a local path) are built into
   wheels and shipped, like Coiled's package sync;
2. the key: a hash of that capture (local projects by a cheap fingerprint of their files,
   so an unchanged environment is recognised without building anything);
3. the gateway builds the environment once per user and key with uv, and reuses it;
4. what the gateway could not reproduce is classified: a different Python minor, dask,
   distributed, cloudpickle or msgpack fails; anything else is a warning with the list.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from packaging.utils import canonicalize_name

from graticule import http, wheels
from graticule import progress as progress_
from graticule.errors import ClusterNotFound, GatewayUnavailable, GraticuleError, SyncError
from graticule.gateway_wait import DEFAULT_WAIT, GatewayWait

API = "/api/graticule/v1/environments/sync"
LOG_WAIT = 10  # seconds the gateway holds a log request open when nothing new came
CRITICAL = ("dask", "distributed", "cloudpickle", "msgpack")
# Not needed on workers and not installable from an index as the SDK's own project.
SKIPPED = {"graticule"}
_JUNK_DIRS = {".git", "__pycache__", ".venv", "venv", "build", "dist", "node_modules", ".tox",
              ".mypy_cache", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints"}
_MAX_FILES = 20_000


class BuildInterrupted(SyncError):
    """The gateway's build was stopped from outside (the gateway restarted), not refused."""


class PackageMismatchWarning(UserWarning):
    """The cluster's environment differs from this one in non-critical packages."""


def canonical(name: str) -> str:
    # packaging's rule (PEP 503), the same the build side uses, so names compare equal there and here.
    return canonicalize_name(name)


@dataclass(frozen=True)
class Local:
    name: str
    version: str
    fingerprint: str
    source: Path | None  # a project to build; None: repack the installed files
    dist: metadata.Distribution = field(compare=False, repr=False)


@dataclass
class Capture:
    python: str
    pinned: dict[str, str]  # canonical name -> requirement
    versions: dict[str, str]  # canonical name -> installed version (all, locals too)
    locals: list[Local]

    @property
    def key(self) -> str:
        document = {
            "python": self.python,
            "pinned": sorted(self.pinned.values()),
            "locals": sorted((item.name, item.version, item.fingerprint) for item in self.locals),
        }
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]


def capture() -> Capture:
    """What is installed in this interpreter's environment, first-on-path wins."""
    pinned: dict[str, str] = {}
    versions: dict[str, str] = {}
    locals_: list[Local] = []
    for dist in metadata.distributions():
        raw = dist.metadata["Name"]
        if not raw:
            continue
        name = canonical(raw)
        if name in versions or name in SKIPPED:
            continue
        versions[name] = dist.version
        origin = _direct_url(dist)
        if origin is None:
            pinned[name] = f"{name}=={dist.version}"
        elif _is_local(origin):
            locals_.append(_local(name, dist, origin))
        else:  # a VCS checkout or a remote archive: the gateway fetches the same URL
            url = origin["url"]
            commit = origin.get("vcs_info", {}).get("commit_id")
            if "vcs_info" in origin:
                url = f"{origin['vcs_info']['vcs']}+{url}" + (f"@{commit}" if commit else "")
            pinned[name] = f"{name} @ {url}"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Capture(python=python, pinned=pinned, versions=versions, locals=locals_)


def _direct_url(dist: metadata.Distribution) -> dict | None:
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _is_local(origin: dict) -> bool:
    return origin.get("url", "").startswith("file:") and "vcs_info" not in origin


def _local(name: str, dist: metadata.Distribution, origin: dict) -> Local:
    path = Path(unquote(urlparse(origin["url"]).path))
    if origin.get("dir_info", {}).get("editable") and path.is_dir():
        return Local(name, dist.version, "tree:" + _tree_fingerprint(path), path, dist)
    record = dist.read_text("RECORD") or ""
    return Local(name, dist.version, "record:" + hashlib.sha256(record.encode()).hexdigest(), None, dist)


def _tree_fingerprint(root: Path) -> str:
    """Cheap: names, sizes and modification times, not contents."""
    digest = hashlib.sha256()
    count = 0
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _JUNK_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(directory, name)
            try:
                stat = path.stat()
            except OSError:
                continue
            digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            count += 1
            if count >= _MAX_FILES:
                return digest.hexdigest()
    return digest.hexdigest()


def local_wheels(captured: Capture, out_dir: Path) -> list[Path]:
    built = []
    for item in captured.locals:
        try:
            if item.source is not None:
                built.append(wheels.build_project(item.source, out_dir))
            else:
                built.append(wheels.repack(item.dist, out_dir))
        except (OSError, ValueError, RuntimeError) as exc:
            raise SyncError(f"cannot ship local package {item.name}: {exc}") from None
    return built


def mismatches(captured: Capture, python: str, installed: dict[str, str]) -> tuple[list[str], list[str]]:
    """(critical, other) differences between this environment and the built one."""
    critical, other = [], []
    built_minor = ".".join(python.split(".")[:2])
    if built_minor != captured.python:
        critical.append(f"python {captured.python} here, {built_minor} on the cluster")
    for name, version in sorted(captured.versions.items()):
        there = installed.get(name)
        if there == version:
            continue
        line = f"{name} {version} here, {there or 'missing'} on the cluster"
        (critical if name in CRITICAL else other).append(line)
    return critical, other


def prepare(config, progress: progress_.Setting = True, gateway_wait: float = DEFAULT_WAIT) -> str:
    """Make sure the gateway has this environment; returns its key for the cluster options.

    progress: how to show the gateway's build while it runs (graticule.progress.shown);
    gateway_wait: seconds to wait while the gateway restarts (graticule.gateway_wait). A
    build the gateway's restart interrupted is started once more."""
    captured = capture()
    key = captured.key
    base = config.gateway_url + API
    wait = GatewayWait(config.gateway_url, gateway_wait)
    try:
        answer = http.call("GET", f"{base}/{key}", token=config.token, wait=wait)
    except ClusterNotFound:
        answer = None
    if answer is None:
        with progress_.shown(progress, "building this environment on the gateway") as show:
            try:
                answer = _build(config, base, captured, show, wait)
            except BuildInterrupted:
                show(progress_.BuildLine("the gateway's build was interrupted (a restart); building it again",
                                         0.0, step=True))
                answer = _build(config, base, captured, show, wait)
    critical, other = mismatches(captured, answer.get("python", ""), answer.get("installed", {}))
    if critical:
        raise SyncError("the cluster cannot run this environment: " + "; ".join(critical))
    if other:
        warnings.warn(
            "the cluster's packages differ from yours: " + "; ".join(other),
            PackageMismatchWarning,
            stacklevel=3,
        )
    return key


def _build(config, base: str, captured: Capture, show: progress_.Show, wait: GatewayWait) -> dict:
    """Send the environment, then follow the gateway's build log until it ends; its report."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="graticule-sync-") as tmp:
        if captured.locals:
            show(progress_.BuildLine(f"building wheels of {len(captured.locals)} local packages here",
                                     time.monotonic() - started, step=True))
        body = {
            "key": captured.key,
            "python": captured.python,
            "requirements": sorted(captured.pinned.values()),
            "wheels": {
                path.name: base64.b64encode(path.read_bytes()).decode()
                for path in local_wheels(captured, Path(tmp))
            },
            "critical": list(CRITICAL),
            "background": True,  # answer at once; the build's log says how it goes
        }
        try:
            answer = http.call("POST", base, token=config.token, body=body, wait=wait)
        except GatewayUnavailable:
            raise
        except GraticuleError as exc:
            raise SyncError(f"the gateway could not build this environment: {exc}") from None
    if answer.get("state") == "built":
        return answer["report"]
    return follow(config, base, captured.key, show, wait)


def follow(config, base: str, key: str, show: progress_.Show, wait: GatewayWait | None = None) -> dict:
    """Show the build's log entries as the gateway writes them (long polls); its report."""
    offset = 0
    while True:
        try:
            page = http.call("GET", f"{base}/{key}/log?offset={offset}&wait={LOG_WAIT}",
                             token=config.token, timeout=LOG_WAIT + 60, wait=wait)
        except ClusterNotFound:
            raise BuildInterrupted("the gateway no longer knows this build (it restarted); "
                                   "start the cluster again") from None
        except GatewayUnavailable:
            raise
        except GraticuleError as exc:
            raise SyncError(f"cannot follow the build of this environment: {exc}") from None
        for entry in page.get("entries", []):
            show(progress_.BuildLine(str(entry["text"]), float(entry["elapsed"]), bool(entry["step"])))
        offset = int(page.get("next", offset))
        if page.get("state") == "built":
            return page.get("report") or {}
        if page.get("state") == "failed":
            failure = BuildInterrupted if page.get("interrupted") else SyncError
            raise failure(f"the gateway could not build this environment: {page.get('error')}")

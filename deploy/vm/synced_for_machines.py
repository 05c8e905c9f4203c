"""A synced environment (`Cluster(sync=True)`) for launched machines, built by the gateway on
the hub VM and published to the artifacts bucket.

Offline throughout (`egress: none`): the wheels come from the laptop's request, the hub's
wheelhouse on disk and the locked environments' caches in the bucket, chosen by
`deploy.vm.wheel_pool`. The chosen wheels and a requirements.txt pinning each by version
and sha256 are installed on the hub first, the machines' way (offline, hashes required,
dependencies checked): a set that fails there fails the sync with the reason, not every
machine at boot. The environment's report is what the SDK compares with the laptop.
Then `publish_environment` puts them at `environments/<key>/`, key = sha256 of that
requirements.txt (the same set is one cache; nothing but the gateway's choice is ever
under a key), and the key is kept beside the built environment (`MACHINES_FILE`) for the
backend to hand to the cluster's machines (deploy.cloud.machine_boot), as for a locked one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from deploy.environments import build, runtime, syncbuild, uv
from deploy.environments.syncbuild import SyncBuildError
from deploy.vm.environment_wheels import PYTHON
from deploy.vm.publish import publish_environment
from deploy.vm.stores import ObjectStore, StoreError
from deploy.vm.wheel_pool import Candidate, SelectionError, WheelPool, select
from deploy.vm.wheelhouse import Wheelhouse
from modules import naming

MACHINES_FILE = "graticule-machines.json"  # in the built environment: {"key": its wheel-cache key}


@dataclass(frozen=True)
class Sources:
    """Where the gateway finds wheels besides the laptop's."""

    store: ObjectStore  # the artifacts bucket
    wheelhouses: Path  # the hub's wheelhouses on its disk (modules.hub_boot_script.WHEELHOUSE)
    published: Mapping[str, str]  # the locked environments' caches: {environment: key}


def machine_key(user: str, key: str, state: Path | None = None) -> str | None:
    """The wheel-cache key of a user's synced environment; None if not built for machines."""
    try:
        found = json.loads((runtime.sync_dir(user, key, state) / MACHINES_FILE).read_text())
    except (OSError, ValueError):
        return None
    return found.get("key") if isinstance(found, dict) else None


def build_for_machines(user: str, key: str, python: str, requirements: list[str], wheels: dict[str, bytes],
                       critical: list[str], *, sources: Sources, state: Path | None = None,
                       progress: build.Progress | None = None) -> dict:
    """Choose, install on the hub, publish; the environment's report (as syncbuild's).

    `python` (the laptop's minor) is not asked for: the machines have CPython 3.11 only, the
    report says so, and the SDK fails on a laptop with another minor."""
    target = runtime.sync_dir(user, key, state)
    existing = syncbuild.report(user, key, state)
    if existing is not None and machine_key(user, key, state) is not None:
        return existing
    build.remove(target)  # built some other way (not for the machines): built again
    started = time.monotonic()
    for line in requirements:
        try:
            Requirement(line)
        except InvalidRequirement:
            raise SyncBuildError(f"not a requirement: {line!r}") from None
    with tempfile.TemporaryDirectory(prefix="graticule-sync-machines-") as tmp:
        pool, local = _pool(Path(tmp), wheels, sources, progress)
        try:
            selection = select(pool, requirements, local, {canonicalize_name(n) for n in critical})
        except SelectionError as exc:
            raise SyncBuildError(str(exc)) from None
        cache = _wheel_cache(pool, selection.chosen.values(), Path(tmp) / "machines")
        lines = (cache.directory / "requirements.txt").read_text().splitlines()

        def finish(env: Path) -> None:
            syncbuild.write_report(env, selection.notes, progress)
            if progress is not None:
                progress.step(f"publishing its {len(lines)} wheels for the machines to "
                              f"{sources.store.url}/{naming.environment_prefix(cache.id)}/")
            try:
                publish_environment(sources.store, cache.id, cache)
            except StoreError as exc:
                raise SyncBuildError(f"publishing the environment's wheels failed: {exc}") from None
            (env / MACHINES_FILE).write_text(json.dumps({"key": cache.id}) + "\n")

        try:
            build.build(target, PYTHON, lines, exact=True, require_hashes=True, find_links=cache.directory,
                        finish=finish, progress=progress)
        except uv.UvError as exc:  # what would fail on every machine fails here, with uv's reason
            syncbuild.raise_if_interrupted(exc)
            raise SyncBuildError(f"the chosen wheels do not install together: {exc}") from None
    if progress is not None:
        progress.step(f"environment ready for the machines in {time.monotonic() - started:.1f} s")
    return syncbuild.report(user, key, state) or {}


def _pool(tmp: Path, wheels: dict[str, bytes], sources: Sources,
          progress: build.Progress | None) -> tuple[WheelPool, list[Candidate]]:
    """The pool (laptop first, then the hub's wheelhouse, then the bucket) and the laptop's wheels in it."""
    fetched = tmp / "bucket"
    fetched.mkdir()

    def fetch(candidate: Candidate) -> Path:
        if candidate.path is not None:
            return candidate.path
        path = fetched / candidate.filename
        if not path.is_file():
            try:
                path.write_bytes(sources.store.get(candidate.key))
            except StoreError as exc:
                raise SyncBuildError(f"reading the platform's wheels failed: {exc}") from None
        return path

    pool = WheelPool(fetch=fetch)
    laptop = tmp / "laptop"
    laptop.mkdir()
    local = []
    for filename, data in sorted(wheels.items()):
        if Path(filename).name != filename or not filename.endswith(".whl"):
            raise SyncBuildError(f"not a wheel file name: {filename!r}")
        (laptop / filename).write_bytes(data)
        found = pool.add(filename, "laptop", path=laptop / filename)
        if found is None:
            raise SyncBuildError(f"{filename} cannot be installed on the machines "
                                 f"(CPython {PYTHON} on x86_64 Linux)")
        local.append(found)
    for index in sorted(sources.wheelhouses.glob("*/index.json")):
        pool.add_directory(index.parent, "hub wheelhouse", json.loads(index.read_text())["files"])
    for name, cache_key in sorted(sources.published.items()):
        prefix = naming.environment_prefix(cache_key)
        try:
            files = json.loads(sources.store.get(f"{prefix}/index.json"))["files"]
        except (StoreError, ValueError, KeyError):
            if progress is not None:
                progress.step(f"the wheels of environment {name} are not readable; going on without them")
            continue
        for filename in files:
            pool.add(filename, prefix, key=f"{prefix}/{filename}")
    if progress is not None:
        progress.step(f"choosing from {sum(map(len, pool.by_name.values()))} wheels the platform has "
                      "(no package index on the hub)")
    return pool, local


def _wheel_cache(pool: WheelPool, chosen, directory: Path) -> Wheelhouse:
    """The chosen wheels, a requirements.txt pinning each by version and hash, index.json."""
    directory.mkdir()
    lines, files = [], []
    for candidate in chosen:
        source = pool.fetch(candidate)
        shutil.copyfile(source, directory / candidate.filename)
        digest = hashlib.sha256((directory / candidate.filename).read_bytes()).hexdigest()
        lines.append(f"{candidate.name}=={candidate.version} --hash=sha256:{digest}")
        files.append(candidate.filename)
    text = "".join(f"{line}\n" for line in sorted(lines))
    (directory / "requirements.txt").write_text(text)
    (directory / "index.json").write_text(json.dumps({"files": sorted(files)}, indent=2) + "\n")
    return Wheelhouse(hashlib.sha256(text.encode()).hexdigest()[:24], directory)

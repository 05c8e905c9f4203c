"""alice's laptop for the `Cluster(sync=True)` e2e modules of every cloud: a virtual environment
with the SDK's requirements, distributed and dask-gateway, and `syncextra`, a small
pure-Python package made here and installed from its wheel (in none of the platform's
environments), and the laptop program that syncs it onto a cluster's machines.

    python = sync_laptop(tmp_path_factory.getbasetemp(), "gcp-sync")   # once per module
    done = run_sync_on_laptop(python, config, wait=900, GRATICULE_GATEWAY_SCHEDULER_URL=...)
    name, result = sync_result(done)   # the cluster's name (None if none started), the last line

What the clouds' e2e modules share around it: `alice_syncs` (her login, then the sync on a
cloud platform), `assert_synced` (the worker ran in the synced environment, its wheels
published under its key), `stop_left_behind` (a failed test leaves no cluster).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.cloud.machine_boot import ENVS_DIR
from tests.support import environments as support
from tests.support import wheelhouse
from tests.support.cloud_e2e import WAIT, eventually
from tests.support.hub_e2e import PASSWORDS, Session
from tests.support.laptop import laptop_env, on_laptop

SYNCED_PACKAGE, SYNCED_VERSION, SYNCED_WHERE = "syncextra", "0.1", "my laptop"
SYNCED_WHEEL = f"{SYNCED_PACKAGE}-{SYNCED_VERSION}-py3-none-any.whl"

LAPTOP_CODE = textwrap.dedent("""
    import json, os, sys, warnings
    import graticule

    def probe():
        import sys, syncextra
        return syncextra.WHERE, sys.executable

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cluster = graticule.Cluster(sync=True, profile="small", n_workers=1, shutdown_on_close=False)
    print(json.dumps({"name": cluster.name}), flush=True)  # the test stops it whatever happens next
    try:
        with cluster.get_client(set_as_default=False) as client:
            client.wait_for_workers(1, timeout=float(os.environ["LAPTOP_WAIT"]))
            where, executable = client.submit(probe, pure=False).result()
    finally:
        cluster.close()  # the client side only (shutdown_on_close=False)
    print(json.dumps({"where": where, "executable": executable,
                      "warnings": [str(w.message) for w in caught]}))
""")


def sync_laptop(base: Path, name: str) -> Path:
    """The laptop's Python (a venv under `base`, `name` unique in the session)."""
    with support.wheelhouse_in_use(base) as house:
        venv = support.shared_venv(base, name, ("distributed", "dask-gateway"))
        projects = base / f"{name}-projects"
        project = wheelhouse.make_project(projects, SYNCED_PACKAGE, SYNCED_VERSION, f"WHERE = {SYNCED_WHERE!r}")
        built = wheelhouse.build_wheel(project, projects, {**os.environ, **house.env})
        subprocess.run([wheelhouse.uv.binary(), "pip", "install", "--quiet", "--python",
                        str(venv / "bin" / "python"), str(built)], check=True, capture_output=True,
                       env={**os.environ, **house.env})
    return venv / "bin" / "python"


def run_sync_on_laptop(python: Path, config: Path, wait: float, **env: str) -> subprocess.CompletedProcess[str]:
    """LAPTOP_CODE with the laptop's config (`graticule login` wrote it) and none of ours in the environment."""
    return subprocess.run([str(python), "-c", LAPTOP_CODE], capture_output=True, text=True, cwd=config,
                          env=laptop_env(config, drop=("UV_",), LAPTOP_WAIT=str(wait), **env), timeout=2 * wait)


def sync_result(done: subprocess.CompletedProcess[str]) -> tuple[str | None, dict]:
    """The started cluster's name (None: none started) and the laptop's last JSON line."""
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return (lines[0]["name"] if lines else None), (lines[-1] if lines else {})


def synced_environment_key(executable: str) -> str:
    """The wheel-cache key of the environment a worker ran in, from its Python's path
    (ENVS_DIR/<key>/bin/python on every cloud)."""
    envs = f"{ENVS_DIR}/"
    assert envs in executable and executable.endswith("/bin/python"), executable
    return executable.split(envs, 1)[1].split("/")[0]


@dataclass
class SyncRun:
    """alice's synced cluster as her laptop left it."""

    config: Path  # her laptop's config directory (`graticule login` wrote it)
    done: subprocess.CompletedProcess[str]
    name: str | None  # the cluster's name; None: none started
    result: dict  # the laptop's last JSON line


def alice_syncs(platform: Any, laptop: Path, tmp_path: Path) -> SyncRun:
    """alice logs in on her laptop (her first login at the hub sets her password) and starts
    `Cluster(sync=True)` on the cloud platform (`front`: the hub, `scheduler`: the gateway's)."""
    config = tmp_path / "laptop-config"
    config.mkdir()
    assert Session(platform.front, "alice").login().status_code == 302
    on_laptop(laptop, config, "login", platform.front, "alice", stdin=PASSWORDS["alice"] + "\n")
    done = run_sync_on_laptop(laptop, config, WAIT, GRATICULE_GATEWAY_SCHEDULER_URL=platform.scheduler)
    name, result = sync_result(done)
    return SyncRun(config, done, name, result)


def assert_synced(run: SyncRun, published: Callable[[str], list[str]], diagnosis: Callable[[], str]) -> str:
    """The worker ran in the synced environment its machine installed from the bucket, whose
    objects (`published(key)`: file names under environments/<key>/) hold her wheel and the
    hub wheelhouse's; the environment's key."""
    assert run.done.returncode == 0, f"{run.done.stdout}\n{run.done.stderr}\n{diagnosis()}"
    assert run.result["where"] == SYNCED_WHERE
    key = synced_environment_key(run.result["executable"])
    files = published(key)
    assert SYNCED_WHEEL in files and {"index.json", "requirements.txt"} <= set(files)
    assert any(wheel.startswith("distributed-") for wheel in files)  # from the hub's wheelhouse
    return key


def stop_left_behind(laptop: Path, run: SyncRun, instances: Callable[[], list]) -> None:
    """After a failed test: stop its cluster and wait until none of its machines is left."""
    if run.name is None:
        return
    with contextlib.suppress(AssertionError):  # stopped already: the failure came after
        on_laptop(laptop, run.config, "stop", run.name)
    eventually(lambda: not instances(), 300, lambda: f"{run.name} left instances")

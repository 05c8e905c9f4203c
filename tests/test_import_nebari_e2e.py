"""Round trip: `platform import nebari` of a local Nebari config with a Keycloak realm
export, `platform render`, then `platform up` for real (JupyterHub, dask-gateway, Dask
processes): a user from the export logs in, and a cluster of an imported Dask profile
starts and computes. `local_platform` runs `platform down` and checks by PID that no
process is left, even when the test fails."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.local_platform import REPO, local_platform
from tests.support.nebari_import import load_yaml

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).parent / "data" / "nebari"


def platform_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRATICULE_", "JUPYTERHUB_"))}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def login(hub_url: str, username: str, password: str) -> bool:
    """The hub's login form, as a browser submits it (with the _xsrf token)."""
    session = requests.Session()
    page = session.get(f"{hub_url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    data = {"username": username, "password": password, "_xsrf": xsrf.group(1) if xsrf else ""}
    answer = session.post(f"{hub_url}/hub/login", data=data, allow_redirects=False, timeout=60)
    return answer.status_code == 302 and any(c.name.startswith("jupyterhub-") for c in answer.cookies)


def test_imported_local_nebari_runs_end_to_end(tmp_path: Path) -> None:
    imported = tmp_path / "platform.yaml"
    done = platform_cli(
        "import",
        "nebari",
        str(CORPUS / "local-defaults.yaml"),
        "--keycloak-export",
        str(CORPUS / "nebari-realm.json"),
        "-o",
        str(imported),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    data = load_yaml(imported.read_text())
    assert data["target"] == "local" and "small-worker" in data["profiles"]
    rendered = platform_cli("render", str(imported), "--out", str(tmp_path / "build"), cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "build" / "workers" / "small-worker.json").exists()

    with local_platform(imported.read_text(), tmp_path / "up") as lp:
        # alice comes from the realm export; her first login sets her password
        assert login(lp.hub_url, "alice", "a good long password")
        assert not login(lp.hub_url, "alice", "not her password!")
        assert not login(lp.hub_url, "eve", "a good long password")  # disabled in Keycloak: not imported
        gateway = lp.gateway("alice")
        cluster = gateway.new_cluster(profile="small-worker", workers=1)
        try:
            with cluster.get_client(set_as_default=False) as client:
                client.wait_for_workers(1, timeout=180)
                assert client.submit(sum, range(100)).result(timeout=120) == 4950
                workers = list(client.scheduler_info()["workers"].values())
                assert workers[0]["nthreads"] == 2  # small-worker: Nebari's 2-core default
        finally:
            with contextlib.suppress(Exception):
                cluster.shutdown()
            gateway.close()

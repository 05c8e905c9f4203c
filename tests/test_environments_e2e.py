"""End to end on the local target: environments and package sync through the real hub,
gateway and Dask, with the graticule SDK. uv resolves only from the test's wheelhouse
(the platform processes inherit the UV_* variables), so nothing touches the network."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
import warnings
from pathlib import Path

import pytest

import graticule
from deploy.cli.main import main as platform_main
from deploy.environments import lock
from tests.support import environments as support
from tests.support import wheelhouse
from tests.support.local_platform import local_platform

pytestmark = pytest.mark.slow
SDK_VARIABLES = ("GRATICULE_TOKEN", "GRATICULE_GATEWAY_URL", "GRATICULE_GATEWAY_SCHEDULER_URL",
                 "GRATICULE_HUB_URL", "GRATICULE_CONFIG_DIR", "JUPYTERHUB_API_TOKEN")


@pytest.fixture(scope="module")
def house(tmp_path_factory):
    with support.wheelhouse_in_use(tmp_path_factory.getbasetemp()) as wheels:
        yield wheels


@pytest.fixture(scope="module")
def lp(house, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("envplatform")
    (workdir / "platform.yaml").write_text(support.PLATFORM_YAML)
    assert platform_main(["lock", str(workdir / "platform.yaml")]) == 0
    assert lock.lock_path(workdir / "platform.yaml").exists()
    with local_platform(support.PLATFORM_YAML, workdir) as handle:
        yield handle


@pytest.fixture(scope="module")
def tokens(lp) -> dict[str, str]:
    return {user: lp.token(user) for user in ("alice", "bob")}


def sdk_env(lp, token: str, config_dir: Path) -> dict[str, str]:
    return {
        "GRATICULE_TOKEN": token,
        "GRATICULE_GATEWAY_URL": lp.gateway_url,
        "GRATICULE_GATEWAY_SCHEDULER_URL": f"tls://127.0.0.1:{lp.gateway_port}",
        "GRATICULE_CONFIG_DIR": str(config_dir),
    }


@pytest.fixture
def as_user(lp, tokens, monkeypatch, tmp_path):
    def become(user: str) -> None:
        for name in SDK_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in sdk_env(lp, tokens[user], tmp_path / "conf").items():
            monkeypatch.setenv(name, value)

    return become


def _probe():
    """A function the workers receive by value (this test module is not importable there)."""

    def try_import(module: str) -> str:
        import importlib

        try:
            return importlib.import_module(module).__name__
        except ImportError as exc:
            return f"ImportError: {exc}"

    return try_import


def test_a_cluster_runs_in_the_environment_chosen_for_it(lp, as_user):
    as_user("alice")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with graticule.Cluster(environment="ml", n_workers=1) as cluster, cluster.get_client() as client:
            client.wait_for_workers(1, timeout=120)
            assert client.submit(_probe(), "mlextra", pure=False).result() == "mlextra"
            executable = client.run(lambda: __import__("sys").executable)
            assert all("/environments/locked/" in path for path in executable.values())
        with graticule.Cluster(environment="default", n_workers=1) as cluster, cluster.get_client() as client:
            client.wait_for_workers(1, timeout=120)
            answer = client.submit(_probe(), "mlextra", pure=False).result()
            assert answer.startswith("ImportError"), answer


def test_an_environment_not_granted_is_refused_plainly(lp, as_user):
    as_user("bob")
    with pytest.raises(graticule.NotAllowed, match="environment 'ml' is not granted to user 'bob'"):
        graticule.Cluster(environment="ml")
    assert graticule.clusters() == []


def test_profiles_and_usage_of_the_user(lp, as_user):
    as_user("alice")
    mine = graticule.profiles()
    assert mine["environments"] == ["default", "ml"]
    assert mine["profiles"]["small"]["cpu"] == 1
    assert mine["profiles"]["small"]["price_per_hour_usd"] == pytest.approx(0.01)
    spend = graticule.usage()
    assert spend["budget"] == "lab"
    as_user("bob")
    assert graticule.profiles()["environments"] == ["default"]


def test_login_stores_a_hub_made_token_privately(lp, tmp_path, monkeypatch):
    for name in SDK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRATICULE_CONFIG_DIR", str(tmp_path / "conf"))
    with pytest.raises(graticule.AuthError):
        graticule.login(lp.hub_url, username="mallory", password="not-a-user-password")
    path = graticule.login(lp.hub_url + "/hub/", username="bob", password="bob-first-password",
                           gateway=lp.gateway_url, proxy=f"tls://127.0.0.1:{lp.gateway_port}")
    assert path.stat().st_mode & 0o777 == 0o600
    saved = json.loads(path.read_text())
    assert saved["user"] == "bob" and saved["hub_url"] == lp.hub_url
    assert graticule.clusters() == []  # the saved token works with the gateway
    with pytest.raises(graticule.AuthError):
        graticule.login(lp.hub_url, username="bob", password="a-wrong-password")


def _sync_script(lp, token: str, venv: Path, house, config_dir: Path) -> subprocess.CompletedProcess:
    code = textwrap.dedent("""
        import json, time
        import graticule

        def probe():
            import sys, syncextra
            return syncextra.WHERE, sys.executable

        started = time.perf_counter()
        with graticule.Cluster(sync=True, n_workers=1) as cluster:
            ready = time.perf_counter() - started
            with cluster.get_client() as client:
                client.wait_for_workers(1, timeout=120)
                where, executable = client.submit(probe, pure=False).result()
        print(json.dumps({"where": where, "executable": executable, "seconds": ready}))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(SDK_VARIABLES)}
    env.update(sdk_env(lp, token, config_dir), **house.env)
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                          env=env, cwd=venv, timeout=600)


def test_sync_makes_a_local_package_importable_on_the_workers(lp, tokens, house, tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    venv = support.shared_venv(base, "sync-e2e", ("distributed", "dask-gateway", "setuptools"))
    project = wheelhouse.make_project(base / "sync-e2e-projects", "syncextra", "0.1", "WHERE = 'my laptop'")
    subprocess.run(
        [wheelhouse.uv.binary(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         "-e", str(project)], check=True, capture_output=True, env={**os.environ, **house.env},
    )
    config = base / "sync-e2e-conf"
    cold = _sync_script(lp, tokens["alice"], venv, house, config)
    assert cold.returncode == 0, cold.stderr
    result = json.loads(cold.stdout)
    assert result["where"] == "my laptop"
    assert "/environments/sync/alice/" in result["executable"]
    assert "Unclosed" not in cold.stderr and "Traceback" not in cold.stderr
    started = time.monotonic()
    warm = _sync_script(lp, tokens["alice"], venv, house, config)
    assert warm.returncode == 0, warm.stderr
    assert json.loads(warm.stdout)["executable"] == result["executable"]  # reused, not rebuilt
    assert time.monotonic() - started < 120


def test_notebook_servers_get_one_kernel_per_granted_environment(lp, tokens):
    from tests.support.kernel import run_in_running_kernel
    from tests.support.local_platform import http

    lp.start_server("bob", tokens["bob"])
    answer = http("GET", f"{lp.hub_url}/user/bob/api/kernelspecs", tokens["bob"])
    assert answer.status == 200, answer
    specs = answer.json()["kernelspecs"]
    assert "graticule-default" in specs and "graticule-ml" not in specs  # bob: default only
    argv = specs["graticule-default"]["spec"]["argv"]
    assert "/environments/locked/" in argv[0]
    assert specs["graticule-default"]["spec"]["display_name"] == "Python (default)"
    started = http("POST", f"{lp.hub_url}/user/bob/api/kernels", tokens["bob"], {"name": "graticule-default"})
    assert started.status == 201, started
    kernel_id = started.json()["id"]
    kernel = f"{lp.hub_url}/user/bob/api/kernels/{kernel_id}"
    deadline = time.monotonic() + 90
    while not [p for p in lp.platform_processes() if p.cmdline()[:3] == [argv[0], "-m", "ipykernel_launcher"]]:
        assert time.monotonic() < deadline, "no kernel process runs the environment's Python"
        time.sleep(0.5)
    # The kernel answers an execute request: the environment's ipykernel did start (and runs).
    code = "import sys; print(sys.executable)"
    ran = run_in_running_kernel(f"{lp.hub_url}/user/bob", tokens["bob"], kernel_id, code, timeout=120)
    assert os.path.realpath(ran.strip()) == os.path.realpath(argv[0])
    assert http("GET", kernel, tokens["bob"]).json()["execution_state"] != "dead"
    assert [p for p in lp.platform_processes() if p.cmdline()[:3] == [argv[0], "-m", "ipykernel_launcher"]]
    http("DELETE", kernel, tokens["bob"])
    lp.hub_api("DELETE", "/users/bob/server", tokens["bob"])

"""The graticule SDK without servers: light imports, settings, errors, package sync's
capture and the gateway's sync builder (uv from a local wheelhouse, no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deploy.environments import syncbuild, uv
from graticule import errors, settings
from graticule.sync import Capture, mismatches
from tests.support import environments as support
from tests.support import wheelhouse

HEAVY = ("render", "modules", "deploy", "cdktf", "boto3", "botocore", "google", "jupyterhub", "sqlalchemy")


@pytest.fixture(scope="module")
def house(tmp_path_factory):
    with support.wheelhouse_in_use(tmp_path_factory.getbasetemp()) as wheels:
        yield wheels


@pytest.fixture(scope="module")
def bare_venv(house, tmp_path_factory) -> Path:
    return support.shared_venv(tmp_path_factory.getbasetemp(), "bare", ("distributed", "dask-gateway"))


@pytest.fixture(scope="module")
def user_venv(house, tmp_path_factory) -> tuple[Path, Path]:
    """A laptop-like environment: the SDK's needs plus an editable local project."""
    base = tmp_path_factory.getbasetemp()
    venv = support.shared_venv(base, "user", ("distributed", "dask-gateway", "setuptools"))
    project = wheelhouse.make_project(base / "user-projects", "syncextra", "0.1", "WHERE = 'local'")
    subprocess.run(
        [uv.binary(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "-e", str(project)],
        check=True, capture_output=True, env={**os.environ, **house.env},
    )
    return venv, project


def _run(venv: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env={**os.environ, **env}, cwd=venv,  # not the repo
    )


def test_import_needs_only_distributed_and_dask_gateway(bare_venv):
    result = _run(bare_venv, f"""
        import sys, json
        import graticule
        from importlib import metadata
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})
        names = sorted(d.metadata['Name'].lower() for d in metadata.distributions())
        print(json.dumps({{"heavy": heavy, "dists": names, "file": graticule.__file__}}))
    """)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["heavy"] == []
    assert "distributed" in found["dists"] and "dask-gateway" in found["dists"]
    assert not {"pydantic", "cdktf", "boto3", "jupyterhub", "sqlalchemy"} & set(found["dists"])
    # graticule imports from its own folder; render/deploy are not even on the path
    assert _run(bare_venv, "import render").returncode != 0


def test_settings_environment_overrides_the_saved_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GRATICULE_CONFIG_DIR", str(tmp_path / "conf"))
    for name in ("GRATICULE_HUB_URL", "GRATICULE_TOKEN", "JUPYTERHUB_API_TOKEN",
                 "GRATICULE_GATEWAY_URL", "GRATICULE_GATEWAY_SCHEDULER_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(errors.AuthError, match=r"graticule\.login"):
        settings.resolve()
    path = settings.save(settings.Settings(token="saved", gateway_url="http://h/services/dask-gateway",
                                           hub_url="http://h", user="alice"))
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert settings.resolve().token == "saved"
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "from-notebook")
    monkeypatch.setenv("GRATICULE_GATEWAY_URL", "http://127.0.0.1:9/")
    resolved = settings.resolve()
    assert (resolved.token, resolved.gateway_url) == ("from-notebook", "http://127.0.0.1:9")
    monkeypatch.setenv("GRATICULE_TOKEN", "explicit")
    assert settings.resolve().token == "explicit"


def test_gateway_refusals_become_plain_exceptions():
    budget = "budget 'lab' refused this request: the budget is exhausted (on_exhausted: stop). Spent $1.00"
    assert type(errors.classify(budget)) is errors.BudgetExceeded
    granted = "environment 'ml' is not granted to user 'bob' (granted by their groups in platform.yaml: default)"
    assert type(errors.classify(granted)) is errors.NotAllowed
    assert type(errors.for_status(401, "", "http://g")) is errors.AuthError
    assert type(errors.for_status(403, "User bob is not allowed to access cluster x", "http://g")) is errors.NotAllowed
    assert type(errors.classify("Cluster abc not found")) is errors.ClusterNotFound


def test_unreachable_gateway_is_one_plain_error_and_no_warning(bare_venv, tmp_path):
    result = _run(bare_venv, """
        import graticule
        try:
            graticule.Cluster()
        except graticule.GraticuleError as exc:
            print(type(exc).__name__, exc)
    """, GRATICULE_TOKEN="t", GRATICULE_GATEWAY_URL="http://127.0.0.1:9",
        GRATICULE_CONFIG_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("GraticuleError cannot reach the gateway at http://127.0.0.1:9")
    assert result.stderr == ""


def _capture(venv: Path) -> dict:
    result = _run(venv, """
        import json
        from graticule.sync import capture
        c = capture()
        print(json.dumps({"key": c.key, "python": c.python, "pinned": c.pinned, "versions": c.versions,
                          "locals": [[l.name, l.version, str(l.source)] for l in c.locals]}))
    """)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_capture_pins_index_packages_and_ships_local_ones(user_venv):
    venv, project = user_venv
    first = _capture(venv)
    assert first["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert first["pinned"]["distributed"] == "distributed==2026.8.0"
    assert first["locals"] == [["syncextra", "0.1", str(project)]]
    assert "syncextra" not in first["pinned"]
    assert _capture(venv)["key"] == first["key"]
    module = project / "syncextra" / "__init__.py"
    module.write_text(module.read_text() + "\n# edited\n")
    assert _capture(venv)["key"] != first["key"]


def test_gateway_builds_the_synced_environment_once(user_venv, house, tmp_path):
    venv, _ = user_venv
    result = _run(venv, """
        import json, pathlib, sys, base64
        from graticule.sync import capture, local_wheels
        c = capture()
        wheels = local_wheels(c, pathlib.Path(sys.argv[-1]) if False else pathlib.Path('%s'))
        print(json.dumps({"key": c.key, "requirements": sorted(c.pinned.values()),
                          "wheels": [str(w) for w in wheels]}))
    """ % (tmp_path / "wheels"), **house.env)
    assert result.returncode == 0, result.stderr
    sent = json.loads(result.stdout)
    wheels = {Path(w).name: Path(w).read_bytes() for w in sent["wheels"]}
    state = tmp_path / "state"
    report = syncbuild.build_synced("alice", sent["key"], "3.11", sent["requirements"], wheels,
                                    ["dask", "distributed"], state)
    assert report["installed"]["syncextra"] == "0.1"
    assert report["installed"]["distributed"] == "2026.8.0"
    python = state / "environments" / "sync" / "alice" / sent["key"] / "bin" / "python"
    code = "import syncextra; print(syncextra.WHERE)"
    assert subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip() == "local"
    again = syncbuild.build_synced("alice", sent["key"], "3.11", [], {}, [], state)
    assert again == report
    assert not (state / "environments" / "sync" / "bob").exists()


def test_unavailable_versions_are_relaxed_or_refused(house, tmp_path):
    key = "0" * 32
    report = syncbuild.build_synced("alice", key, "3.11", ["mlextra==9.9", "six==1.17.0"], {}, ["dask"], tmp_path)
    assert report["installed"]["mlextra"] == "1.0"
    assert report["relaxed"] == ["mlextra==9.9 -> any version"]
    with pytest.raises(syncbuild.SyncBuildError, match=r"cloudpickle==0\.0\.1"):
        syncbuild.build_synced("alice", "1" * 32, "3.11", ["cloudpickle==0.0.1"], {}, ["cloudpickle"], tmp_path)
    assert not (tmp_path / "environments" / "sync" / "alice" / ("1" * 32)).exists()


def test_mismatches_are_classified():
    captured = Capture(python="3.11", pinned={}, locals=[],
                       versions={"distributed": "2026.8.0", "mlextra": "9.9", "six": "1.17.0"})
    critical, other = mismatches(captured, "3.11.7", {"distributed": "2026.8.0", "mlextra": "1.0", "six": "1.17.0"})
    assert critical == [] and other == ["mlextra 9.9 here, 1.0 on the cluster"]
    critical, _ = mismatches(captured, "3.12.1", {"distributed": "2025.1.0"})
    assert critical == ["python 3.11 here, 3.12 on the cluster", "distributed 2026.8.0 here, 2025.1.0 on the cluster"]

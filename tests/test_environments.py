"""Environments: render, `platform lock`, the lock check in `platform validate`, and apply's
content-addressed builds. Every uv call resolves from a wheelhouse the test makes (no
network): wheels repacked from this interpreter's packages plus `mlextra`, built here."""

from __future__ import annotations

import json
import subprocess
import time
from importlib import metadata
from pathlib import Path

import pytest

from deploy.cli.main import main as platform_main
from deploy.environments import ensure, lock, uv
from render.environments import PLATFORM_PINS, render_environments
from render.validate import validate_text
from tests.support import environments as support


@pytest.fixture(scope="module")
def house(tmp_path_factory):
    with support.wheelhouse_in_use(tmp_path_factory.getbasetemp()) as wheels:
        yield wheels


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text(support.PLATFORM_YAML)
    return path


@pytest.fixture(scope="module")
def locked(house, tmp_path_factory) -> tuple[Path, bytes]:
    """A platform.yaml with its environments.lock, made once for the module."""
    path = tmp_path_factory.mktemp("locked") / "platform.yaml"
    path.write_text(support.PLATFORM_YAML)
    assert platform_main(["lock", str(path)]) == 0
    return path, lock.lock_path(path).read_bytes()


@pytest.fixture(scope="module")
def built(locked, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    path, _ = locked
    state = tmp_path_factory.mktemp("state")
    platform = validate_text(path.read_text())
    return state, ensure.ensure_environments(platform, lock.read(lock.lock_path(path)), state)


def test_platform_pins_are_what_the_platform_runs():
    for name, version in PLATFORM_PINS.items():
        assert metadata.version(name) == version


def test_render_is_pure_and_adds_the_platform_pins():
    platform = validate_text(support.PLATFORM_YAML)
    first, second = render_environments(platform), render_environments(platform)
    assert first == second
    assert sorted(first) == ["environments/default.json", "environments/ml.json"]
    spec = json.loads(first["environments/ml.json"])
    assert spec["python"] == "3.11"
    assert "mlextra" in spec["requirements"]
    assert "distributed==2026.8.0" in spec["requirements"]
    assert "dask-gateway==2026.3.0" in spec["requirements"]


def test_a_package_excluding_the_platform_dask_is_a_located_error(config, capsys):
    config.write_text(support.PLATFORM_YAML.replace(
        '"dask[distributed]==2026.8.0", "mlextra"', '"distributed<2026", "mlextra"'))
    assert platform_main(["validate", str(config)]) == 2
    error = capsys.readouterr().err
    line = support.PLATFORM_YAML.splitlines().index("  ml:") + 3  # the packages line, 1-based
    assert f"platform.yaml:{line}:" in error
    assert "environments.ml.packages[0]:" in error
    assert "distributed 2026.8.0" in error


def test_lock_is_deterministic_and_pins_everything(locked, tmp_path):
    _, first = locked
    document = json.loads(first)
    ml = document["environments"]["ml"]["packages"]
    assert "mlextra==1.0" in ml
    assert "distributed==2026.8.0" in ml and "dask==2026.8.0" in ml
    assert all("==" in line for line in ml)
    assert "mlextra==1.0" not in document["environments"]["default"]["packages"]
    hashed = document["environments"]["ml"]["machines"]["x86_64"]  # no Arm profile: x86_64 only
    assert list(document["environments"]["ml"]["machines"]) == ["x86_64"]
    assert [line.split(" --hash=")[0] for line in hashed] == ml and all("--hash=sha256:" in line for line in hashed)
    again = tmp_path / "platform.yaml"
    again.write_text(support.PLATFORM_YAML)
    assert platform_main(["lock", str(again)]) == 0
    assert lock.lock_path(again).read_bytes() == first


def test_validate_accepts_a_current_lock_and_locates_a_stale_one(locked, tmp_path, capsys):
    _, data = locked
    config = tmp_path / "platform.yaml"
    config.write_text(support.PLATFORM_YAML)
    lock.lock_path(config).write_bytes(data)
    assert platform_main(["validate", str(config)]) == 0

    config.write_text(support.PLATFORM_YAML.replace('"mlextra"]', '"mlextra", "six"]'))
    capsys.readouterr()
    assert platform_main(["validate", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    line = support.PLATFORM_YAML.splitlines().index("  ml:") + 1
    assert error.startswith(f"{config}:{line}:3: environments.ml: environments.lock is stale")
    assert "platform lock" in error


def test_validate_locates_an_environment_missing_from_the_lock(locked, tmp_path, capsys):
    _, data = locked
    config = tmp_path / "platform.yaml"
    config.write_text(support.PLATFORM_YAML)
    document = json.loads(data)
    del document["environments"]["default"]
    lock.lock_path(config).write_text(json.dumps(document))
    assert platform_main(["validate", str(config), "--json"]) == 2
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is False
    (issue,) = result["errors"]
    assert issue["path"] == "environments.default"
    assert "not in environments.lock" in issue["message"]


def test_validate_locates_a_lock_with_the_wrong_dask(locked, tmp_path, capsys):
    _, data = locked
    config = tmp_path / "platform.yaml"
    config.write_text(support.PLATFORM_YAML)
    text = data.decode().replace('"distributed==2026.8.0"', '"distributed==2025.1.0"')
    lock.lock_path(config).write_text(text)
    assert platform_main(["validate", str(config)]) == 2
    error = capsys.readouterr().err
    assert "environments.default: environments.lock has distributed 2025.1.0" in error
    assert "environments.ml: environments.lock has distributed 2025.1.0" in error


def _imports(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def test_apply_builds_each_locked_environment_content_addressed(built):
    state, pythons = built
    assert set(pythons) == {"default", "ml"}
    assert pythons["default"] != pythons["ml"]
    assert _imports(pythons["ml"], "mlextra")
    assert not _imports(pythons["default"], "mlextra")
    assert _imports(pythons["default"], "distributed") and _imports(pythons["default"], "dask_gateway")
    index = json.loads((state / "environments" / "index.json").read_text())
    assert index == pythons
    assert (state / "environments" / "index.json").stat().st_mode & 0o777 == 0o600


def test_apply_skips_environments_that_exist(built, locked):
    state, pythons = built
    path, _ = locked
    platform = validate_text(path.read_text())
    before = Path(pythons["ml"]).parent.parent.stat().st_ino
    started = time.monotonic()
    again = ensure.ensure_environments(platform, lock.read(lock.lock_path(path)), state)
    assert again == pythons
    assert time.monotonic() - started < 2.0
    assert Path(pythons["ml"]).parent.parent.stat().st_ino == before


def test_a_failed_build_leaves_nothing_behind(house, tmp_path):
    platform = validate_text(support.PLATFORM_YAML)
    broken = {
        "default": lock.Entry("3.11", "sha256:x", ("nosuchpackage==1.0",)),
    }
    with pytest.raises(uv.UvError, match="nosuchpackage"):
        ensure.ensure_environments(platform, broken, tmp_path)
    assert list((tmp_path / "environments" / "locked").iterdir()) == []


def test_without_a_lock_every_environment_runs_on_the_platform_python(tmp_path):
    import sys

    platform = validate_text(support.PLATFORM_YAML)
    assert ensure.ensure_environments(platform, None, tmp_path) == {
        "default": sys.executable,
        "ml": sys.executable,
    }

"""Two installs: `pip install graticule` is the SDK only; the platform is `graticule[platform]`.

The package is built from this checkout and installed into a clean venv with only its base
dependencies (resolved by uv from a local wheelhouse of what this machine has installed, no
network). Every module of the SDK must import there, the platform's packages must be absent,
the metadata carries the one version, and `platform` says which install it needs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib

import pytest

from deploy.environments import uv
from tests.conftest import REPO
from tests.support import environments as support

SOURCES = ("pyproject.toml", "README.md", "graticule", "deploy", "render", "modules")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sdk_venv(tmp_path_factory):
    house = support.shared_wheelhouse(tmp_path_factory.getbasetemp())
    work = tmp_path_factory.mktemp("sdk-install")
    source = work / "graticule-src"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    venv = work / "venv"
    env = {**os.environ, **house.env, "UV_OFFLINE": "1"}  # uv reads no UV_NO_INDEX: offline keeps it off PyPI
    subprocess.run([uv.binary(), "venv", "--quiet", "--python", "3.11", str(venv)], check=True, env=env)
    subprocess.run([uv.binary(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                    str(source)], check=True, env=env, capture_output=True)
    return venv


def _python(venv, code: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=venv, env=env,
                          capture_output=True, text=True, timeout=300)


def test_every_sdk_module_imports_with_only_the_base_install(sdk_venv):
    result = _python(sdk_venv, (
        "import importlib, pkgutil, graticule\n"
        "names = [m.name for m in pkgutil.walk_packages(graticule.__path__, 'graticule.')]\n"
        "[importlib.import_module(n) for n in names]\n"
        "print(len(names), graticule.__file__)"
    ))
    assert result.returncode == 0, result.stderr
    count, location = result.stdout.split()
    assert int(count) >= 8 and "site-packages" in location  # the installed copy, not the checkout


def test_the_base_install_holds_none_of_the_platform(sdk_venv):
    platform_only = ["pydantic", "jupyterhub", "dask_gateway_server", "cdktf", "jsii", "rich", "sqlalchemy",
                     "boto3", "google.cloud.compute"]
    result = _python(sdk_venv, (
        "import importlib.util\n"
        f"print(' '.join(n for n in {platform_only!r} if importlib.util.find_spec(n.split('.')[0])))"
    ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_the_metadata_version_is_the_sdk_version(sdk_venv):
    result = _python(sdk_venv, (
        "import importlib.metadata, graticule\n"
        "print(importlib.metadata.version('graticule'), graticule.__version__)"
    ))
    assert result.returncode == 0, result.stderr
    declared, exported = result.stdout.split()
    assert declared == exported
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]


def test_platform_names_the_install_it_needs(sdk_venv):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([str(sdk_venv / "bin" / "platform"), "validate"], cwd=sdk_venv, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "pip install 'graticule[platform]'" in result.stderr and "Traceback" not in result.stderr

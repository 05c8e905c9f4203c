"""Shared, network-free setup for environment tests: one wheelhouse per test session.

pytest would build a session fixture once per test module that imports it (conftest.py
is not ours to extend), so the expensive parts are cached here per base temp directory.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deploy.environments import uv
from tests.support import wheelhouse

PLATFORM_YAML = """\
apiVersion: graticule/v1
name: envtest
target: local
hub:
  auth: {provider: local}
  default_profile: small
groups:
  science: {budget: lab, profiles: [small], environments: [default, ml]}
  students: {budget: lab, profiles: [small], environments: [default]}
users:
  - {name: alice, groups: [science]}
  - {name: bob, groups: [students]}
budgets:
  lab: {monthly_usd: 1000, max_cores: 64}
profiles:
  small: {cpu: 1, memory: 1GiB, price_per_hour_usd: 0.01}
dask: {default_profile: small}
environments:
  default:
    python: "3.11"
    packages: ["dask[distributed]==2026.8.0"]
  ml:
    python: "3.11"
    packages: ["dask[distributed]==2026.8.0", "mlextra"]
"""


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    cache: Path
    projects: Path

    @property
    def env(self) -> dict[str, str]:
        return wheelhouse.uv_env(self.path, self.cache)


@functools.cache
def shared_wheelhouse(base: Path) -> Wheelhouse:
    root = base / "wheelhouse-shared"
    house = Wheelhouse(root / "wheels", root / "uv-cache", root / "projects")
    house.path.mkdir(parents=True)
    wheelhouse.repack_installed(house.path)
    env = {**os.environ, **house.env}
    project = wheelhouse.make_project(house.projects, "mlextra", "1.0", "ANSWER = 42")
    wheelhouse.build_wheel(project, house.path, env)
    return house


# The SDK install's own requirements (pyproject's base dependencies), in every SDK venv.
SDK_REQUIREMENTS = tuple(
    tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]["dependencies"]
)


@functools.cache
def shared_venv(base: Path, name: str, packages: tuple[str, ...]) -> Path:
    """A virtual environment holding the SDK install's requirements and `packages` from the
    wheelhouse, with the `graticule` SDK (and nothing else of ours) importable through a .pth file."""
    house = shared_wheelhouse(base)
    env = {**os.environ, **house.env}
    venv = base / f"venv-{name}"
    run = functools.partial(subprocess.run, check=True, env=env, capture_output=True)
    run([uv.binary(), "venv", "--quiet", "--python", "3.11", str(venv)])
    python = str(venv / "bin" / "python")
    run([uv.binary(), "pip", "install", "--quiet", "--python", python, *SDK_REQUIREMENTS, *packages])
    sdk_only = base / f"sdk-{name}"
    sdk_only.mkdir()
    source = Path(__file__).resolve().parents[2] / "graticule"
    (sdk_only / "graticule").symlink_to(source, target_is_directory=True)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    (site / "graticule_sdk.pth").write_text(f"{sdk_only}\n")
    return venv


@contextlib.contextmanager
def wheelhouse_in_use(base: Path) -> Iterator[Wheelhouse]:
    """The shared wheelhouse under `base`, with every uv call of this process (and its
    children) pointed at it until the block ends."""
    house = shared_wheelhouse(base)
    previous = {key: os.environ.get(key) for key in house.env}
    os.environ.update(house.env)
    try:
        yield house
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

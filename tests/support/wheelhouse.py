"""A local wheelhouse for tests that build environments without any network.

It holds wheels repacked from what this interpreter has installed (the closure of the
given roots: distributed, dask-gateway, ipykernel, setuptools and wheel as a build backend)
and small pure-Python packages made on the fly and built with `uv build`. `uv_env()` gives
the variables that make every uv call (lock, builds, the gateway's sync builder)
resolve from that directory only: --find-links and offline (uv reads no UV_NO_INDEX, so
offline is what keeps it from asking PyPI), no Python downloads.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import subprocess
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy.environments import uv
from deploy.vm.wheelhouse import Wheelhouse
from graticule.wheels import repack

ROOTS = ("distributed", "dask-gateway", "ipykernel", "setuptools", "wheel")


def closure(roots: tuple[str, ...]) -> dict[str, metadata.Distribution]:
    """Installed distributions needed by `roots` (markers evaluated for this Python)."""
    seen: dict[str, metadata.Distribution] = {}
    pending = [(root, frozenset()) for root in roots]
    while pending:
        name, extras = pending.pop()
        key = canonicalize_name(name)
        if key in seen and not extras:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(e) for e in environments):
                continue
            pending.append((requirement.name, frozenset(requirement.extras)))
    return seen


def repack_installed(out_dir: Path, roots: tuple[str, ...] = ROOTS) -> list[Path]:
    return [repack(dist, out_dir) for dist in closure(roots).values()]


def make_project(parent: Path, name: str, version: str, body: str) -> Path:
    """A tiny setuptools project `name` whose module holds `body`."""
    module = name.replace("-", "_")
    project = parent / f"{name}-{version}"
    (project / module).mkdir(parents=True, exist_ok=True)
    (project / module / "__init__.py").write_text(f"__version__ = {version!r}\n{body}\n")
    (project / "pyproject.toml").write_text(
        "[build-system]\n"
        'requires = ["setuptools>=61"]\n'
        'build-backend = "setuptools.build_meta"\n'
        "[project]\n"
        f'name = "{name}"\nversion = "{version}"\n'
        "[tool.setuptools]\n"
        f'packages = ["{module}"]\n'
    )
    return project


def build_wheel(project: Path, out_dir: Path, env: dict[str, str]) -> Path:
    before = set(out_dir.glob("*.whl"))
    subprocess.run(
        [uv.binary(), "build", "--wheel", "--quiet", "--out-dir", str(out_dir), str(project)],
        check=True, env=env, capture_output=True,
    )
    (built,) = set(out_dir.glob("*.whl")) - before
    return built


def uv_env(wheelhouse: Path, cache: Path) -> dict[str, str]:
    return {
        "UV_FIND_LINKS": str(wheelhouse),
        "UV_NO_INDEX": "1",
        "UV_OFFLINE": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_CACHE_DIR": str(cache),
        "UV_NO_PROGRESS": "1",
    }


def six_environment(tmp_path: Path) -> tuple[str, Wheelhouse]:
    """A locked environment's wheels as apply publishes them (six, hashed), and its key."""
    directory = tmp_path / "wheels"
    directory.mkdir()
    wheel = repack(metadata.distribution("six"), directory)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (directory / "requirements.txt").write_text(f"six=={metadata.version('six')} --hash=sha256:{digest}\n")
    (directory / "index.json").write_text(json.dumps({"files": [wheel.name]}))
    return "k" + digest[:23], Wheelhouse("unused", directory)


def tiny_wheel(out: Path, name: str, version: str, requires: tuple[str, ...] = (),
               tag: str = "py3-none-any", body: str = "", python: str = ">=3.8") -> Path:
    """An installable wheel of module `name` (its METADATA requiring `requires` and `python`)."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n{body}\n",
        f"{dist_info}/METADATA": "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                                          f"Requires-Python: {python}\n",
                                          *(f"Requires-Dist: {r}\n" for r in requires)]),
        f"{dist_info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n",
    }
    rows = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        rows.append((path, f"sha256={digest}", str(len(text.encode()))))
    rows.append((f"{dist_info}/RECORD", "", ""))
    record = io.StringIO()
    csv.writer(record, lineterminator="\n").writerows(rows)
    files[f"{dist_info}/RECORD"] = record.getvalue()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{module}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path

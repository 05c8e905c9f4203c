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
import hashlib
import subprocess
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy.environments import uv
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


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(out: Path, name: str, version: str, tag: str, body: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal, valid wheel (METADATA, WHEEL, RECORD) for `tag` (py3-none-<platform>)."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": body.encode(),
        f"{info}/METADATA": "".join(
            [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             *(f"Requires-Dist: {line}\n" for line in requires)]
        ).encode(),
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: {tag}\n".encode(),
    }
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    target = out / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(target, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return target

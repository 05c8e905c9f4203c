"""The hub VM's wheelhouse: graticule[platform,<cloud>] at the running version, every package
pinned with `--hash`, as wheels for the VM's Python (CPython 3.11, x86_64, glibc 2.36:
Debian 12, the image the stack selects).

`uv pip compile` resolves and hashes; `pip download` fetches exactly those files (uv has
no download command) and checks their hashes. graticule itself is a wheel built from the
source that is running (a checkout), or repacked from its installed files. Where packages
come from is the operator's: the usual index settings (UV_INDEX_URL, PIP_INDEX_URL...), or
`GRATICULE_WHEELHOUSE_FIND_LINKS`, a directory or URL of wheels used instead of any index
(offline applies; the tests). Built once per requirements set under the state directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from deploy.environments import uv
from deploy.errors import RuntimeFailure
from deploy.files import write_atomic
from deploy.runtime import env

PYTHON_VERSION = "3.11.2"  # Debian 12's python3: Requires-Python checks need the patch level
UV_PLATFORM = "x86_64-manylinux_2_36"
# pip does not widen a manylinux_2_36 platform to the older glibc tags it includes: all named.
PIP_PLATFORMS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)),
                 "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")
EXTRAS = "platform,{cloud}"  # the machines layer and stores of the hub's cloud
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01: the same source gives the same wheel bytes
_SOURCE_PARTS = ("pyproject.toml", "README.md", "graticule", "deploy", "render", "modules")


@dataclass(frozen=True)
class Wheelhouse:
    id: str  # sha256 of requirements.txt
    directory: Path  # requirements.txt, index.json and the wheels

    @property
    def files(self) -> list[str]:
        return json.loads((self.directory / "index.json").read_text())["files"]


def _sources() -> list[str]:
    """--find-links arguments (and --no-index) when the operator named a wheel source."""
    given = os.environ.get(env.WHEELHOUSE_FIND_LINKS, "").strip()
    return ["--find-links", given, "--no-index"] if given else []


def graticule_wheel(out_dir: Path) -> Path:
    """graticule as a wheel: built from the checkout this code runs from, else repacked."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "graticule").is_dir():
        return _build_from_source(root, out_dir)
    from graticule.wheels import repack

    return repack(metadata.distribution("graticule"), out_dir)


def _build_from_source(root: Path, out_dir: Path) -> Path:
    """A copy of the package sources only, so the build leaves the checkout untouched."""
    with tempfile.TemporaryDirectory(prefix="graticule-src-") as tmp:
        copy = Path(tmp) / "graticule"
        copy.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for part in _SOURCE_PARTS:
            source = root / part
            if source.is_dir():
                shutil.copytree(source, copy / part, ignore=ignore)
            elif source.is_file():
                shutil.copy2(source, copy / part)
        out_dir.mkdir(parents=True, exist_ok=True)
        before = set(out_dir.glob("*.whl"))
        extra = {"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
        if os.environ.get(env.WHEELHOUSE_FIND_LINKS):
            extra |= {"UV_FIND_LINKS": os.environ[env.WHEELHOUSE_FIND_LINKS], "UV_NO_INDEX": "1", "UV_OFFLINE": "1"}
        uv.run("build", "--wheel", "--quiet", "--out-dir", str(out_dir), str(copy), env=extra)
        built = set(out_dir.glob("*.whl")) - before
    if len(built) != 1:
        raise RuntimeFailure(f"building graticule's wheel gave {len(built)} files")
    return built.pop()


def compile_requirements(graticule: Path, version: str, cloud: str = "aws") -> str:
    """requirements.txt: every package of graticule[platform,<cloud>]==version, pinned, hashed."""
    spec = f"graticule[{EXTRAS.format(cloud=cloud)}]=={version}\n"
    text = uv.run(
        "pip", "compile", "-", "--quiet", "--generate-hashes", "--no-header", "--no-annotate",
        "--python-platform", UV_PLATFORM, "--python-version", PYTHON_VERSION,
        "--find-links", str(graticule.parent), *_sources(), stdin=spec,
    )
    return text if text.endswith("\n") else text + "\n"


def download(requirements: Path, graticule_dir: Path, out_dir: Path) -> list[str]:
    """Fetch exactly the pinned files (hashes checked) for the VM's platform."""
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
        *(arg for tag in PIP_PLATFORMS for arg in ("--platform", tag)),
        "--python-version", PYTHON_VERSION, "--implementation", "cp",
        "--abi", "cp311", "--abi", "abi3", "--abi", "none", "--require-hashes",
        "--find-links", str(graticule_dir), *_sources(), "-r", str(requirements), "-d", str(out_dir),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-8:])
        raise RuntimeFailure(f"downloading the hub's wheelhouse failed:\n{tail}")
    return sorted(path.name for path in out_dir.glob("*.whl"))


def ensure_wheelhouse(cache: Path, progress: Callable[[str], None] = lambda _: None, cloud: str = "aws") -> Wheelhouse:
    """The wheelhouse of the running graticule for a hub on `cloud`, built under `cache/<id>/` once."""
    from render.build import version

    with tempfile.TemporaryDirectory(prefix="graticule-wheel-") as tmp:
        progress("hub wheelhouse: building graticule's wheel")
        own = graticule_wheel(Path(tmp))
        progress(f"hub wheelhouse: resolving graticule[{EXTRAS.format(cloud=cloud)}] for CPython 3.11 on "
                 "manylinux_2_36 x86_64")
        requirements = compile_requirements(own, version(), cloud)
        wheelhouse_id = hashlib.sha256(requirements.encode()).hexdigest()
        return fetched_once(cache, wheelhouse_id, requirements, own.parent,
                            lambda: progress(f"hub wheelhouse {wheelhouse_id[:12]}: fetching the wheels"))


def fetched_once(cache: Path, wheelhouse_id: str, requirements: str, find_links: Path | None,
                 fetching: Callable[[], None]) -> Wheelhouse:
    """The wheels `requirements` pins (hashes checked) under `cache/<wheelhouse_id>/`, fetched
    only when not there yet (`fetching` says so first) into a staging directory that is renamed
    into place once whole: an interrupted fetch leaves no half wheelhouse to be taken for one.
    `find_links`: where else pinned files are (None: nowhere)."""
    directory = cache / wheelhouse_id
    if (directory / "index.json").is_file():
        return Wheelhouse(wheelhouse_id, directory)
    fetching()
    staging = cache / f".{wheelhouse_id}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "requirements.txt").write_text(requirements)
    files = download(staging / "requirements.txt", find_links or staging, staging)
    write_atomic(staging / "index.json", json.dumps({"files": files}, indent=2) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return Wheelhouse(wheelhouse_id, directory)

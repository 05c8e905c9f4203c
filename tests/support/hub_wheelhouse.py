"""An offline wheel source for the hub VM's wheelhouse (deploy.vm.wheelhouse): every
distribution graticule[platform,aws] and [platform,gcp] need, repacked from what this interpreter has
installed (this host is Debian 12 with CPython 3.11, like the VM's image), plus setuptools
and wheel to build graticule's own wheel. Files a distribution installed outside
site-packages go back into its wheel's `.data/` (JupyterHub's templates, JupyterLab's
assets, uv's binary, which the VM takes out of that wheel). Set GRATICULE_WHEELHOUSE_FIND_LINKS to the directory.

Built once per set of installed versions under ~/.cache/graticule/hub-wheels (several
hundred MB of wheels take a minute to repack).
"""

from __future__ import annotations

import base64
import csv
import fcntl
import hashlib
import io
import shutil
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from graticule.wheels import repack, wheel_name
from tests.support.wheelhouse import closure

EXTRAS = ("platform", "aws", "gcp")
BUILD = ("setuptools", "wheel")
CACHE = Path.home() / ".cache" / "graticule" / "hub-wheels"
CHECKOUT = Path(__file__).resolve().parents[2]


def roots() -> tuple[str, ...]:
    """graticule's requirements with the platform and cloud extras (graticule itself is built),
    from the checkout's pyproject.toml: the wheel is built from it, and its extras may be
    newer than the installed graticule's metadata."""
    project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]
    texts = [*project.get("dependencies", []),
             *(text for extra in EXTRAS for text in project.get("optional-dependencies", {}).get(extra, []))]
    names = []
    for text in texts:
        requirement = Requirement(text)
        if requirement.name != "graticule" and (requirement.marker is None or requirement.marker.evaluate()):
            names.append(requirement.name)
            names.extend(f"{requirement.name}:{extra}" for extra in requirement.extras)
    return tuple(dict.fromkeys(names))


def _distributions() -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    plain = [name for name in roots() if ":" not in name]
    found.update(closure((*plain, *BUILD)))
    # extras of the roots (dask-gateway-server[local], psycopg[binary]): their requirements too
    for name in roots():
        if ":" in name:
            base, extra = name.split(":")
            for text in metadata.distribution(base).requires or []:
                requirement = Requirement(text)
                if requirement.marker and requirement.marker.evaluate({"extra": extra}):
                    found.update(closure((requirement.name,)))
    found.pop("graticule", None)
    return found


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _outside(dist: metadata.Distribution) -> list[tuple[str, Path]]:
    """Files `dist` installed outside site-packages (RECORD paths starting with '..'), as
    (their path under the environment's prefix, where they are now)."""
    site = Path(dist.locate_file(""))
    prefix = Path(sys.prefix)
    found = []
    for item in dist.files or []:
        if not str(item).startswith(".."):
            continue
        path = (site / item).resolve()
        if path.is_file() and path.is_relative_to(prefix):
            found.append((path.relative_to(prefix).as_posix(), path))
    return found


def _data_members(dist: metadata.Distribution) -> list[tuple[str, bytes, int]]:
    """What a wheel carries in `.data/`: data files (JupyterHub's templates and static files,
    JupyterLab's assets and server config under share/ and etc/), and for uv its binary.
    Other bin/ files are entry-point scripts, which installers write from entry_points.txt."""
    data_dir = f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}.data"
    members = []
    for relative, path in _outside(dist):
        if relative.startswith("bin/"):
            if dist.metadata["Name"] == "uv" and path.name == "uv":
                members.append((f"{data_dir}/scripts/uv", path.read_bytes(), 0o755))
            continue
        members.append((f"{data_dir}/data/{relative}", path.read_bytes(), 0o644))
    return members


def repack_with_data(dist: metadata.Distribution, out_dir: Path) -> Path:
    """repack() plus the `.data/` members it leaves out (files installed outside site-packages)."""
    plain = repack(dist, out_dir)
    members = _data_members(dist)
    if not members:
        return plain
    staging = plain.with_suffix(".tmp")
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as target:
        record_name = next(n for n in source.namelist() if n.endswith(".dist-info/RECORD"))
        rows = list(csv.reader(io.StringIO(source.read(record_name).decode())))
        for item in source.infolist():
            if item.filename != record_name:
                target.writestr(item, source.read(item.filename))
        for name, data, mode in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, data)
            rows.insert(-1, [name, _digest(data), str(len(data))])
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        target.writestr(zipfile.ZipInfo(record_name, date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue())
    staging.replace(plain)
    return plain


def _rewrite(wheel: Path, change) -> None:
    """Rewrite a wheel's METADATA with `change(text) -> text`, its RECORD row too."""
    staging = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as target:
        names = source.namelist()
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        new = change(source.read(metadata_name).decode()).encode()
        rows = [[metadata_name, _digest(new), str(len(new))] if row and row[0] == metadata_name else row
                for row in csv.reader(io.StringIO(source.read(record_name).decode()))]
        for item in source.infolist():
            if item.filename == metadata_name:
                target.writestr(item, new)
            elif item.filename != record_name:
                target.writestr(item, source.read(item.filename))
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        target.writestr(zipfile.ZipInfo(record_name, date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue())
    staging.replace(wheel)


# soupsieve 4.1.4 (what this host has) declares Requires-Python >=3.11.5; the VM's image has
# Debian 12's 3.11.2. The real wheelhouse resolves an older soupsieve from the index; offline
# there is none, so the copy here declares >=3.11 (the hub never imports it: nbconvert's HTML
# export does). Said here because it is the one package of the set that needs it.
RELABELLED = {"soupsieve": ">=3.11"}


def hub_wheels() -> Path:
    """The directory of wheels (built once per set of installed versions)."""
    dists = _distributions()
    key = hashlib.sha256("\n".join(sorted(f"{n}=={d.version}" for n, d in dists.items())).encode()).hexdigest()[:16]
    directory = CACHE / f"{key}-v3"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other test processes build the same directory
        if (directory / "COMPLETE").is_file():
            return directory
        staging = CACHE / f".{key}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for name, dist in sorted(dists.items()):
            wheel = repack_with_data(dist, staging)
            if name in RELABELLED:
                _rewrite(wheel, lambda text, name=name: "\n".join(
                    f"Requires-Python: {RELABELLED[name]}" if line.startswith("Requires-Python:") else line
                    for line in text.split("\n")))
        (staging / "COMPLETE").write_text("\n".join(sorted(wheel_name(d) for d in dists.values())) + "\n")
        shutil.rmtree(directory, ignore_errors=True)
        staging.rename(directory)
    return directory

"""Wheels from what is installed: repack an installed distribution, or build a local project.

Repacking copies the files an installer recorded in RECORD (those under the install's
site directory; scripts are regenerated from entry_points.txt on install), keeps the
original WHEEL metadata, and writes a fresh RECORD with sha256 hashes.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel_name(dist: metadata.Distribution) -> str:
    name = canonicalize_name(dist.metadata["Name"]).replace("-", "_")  # the wheel filename's escaping
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")] or ["py3-none-any"]
    parts = [sorted({tag.split("-")[i] for tag in tags}) for i in range(3)]
    tag = "-".join(".".join(values) for values in parts)
    return f"{name}-{dist.version}-{tag}.whl"


def repack(dist: metadata.Distribution, out_dir: Path) -> Path:
    """A wheel rebuilt from the installed files of `dist`, written into `out_dir`."""
    site = Path(dist.locate_file(""))
    files = [f for f in dist.files or [] if not str(f).startswith("..") and f.suffix != ".pyc"]
    target = out_dir / wheel_name(dist)
    record_name = next((str(f) for f in dist.files or [] if f.name == "RECORD"), None)
    if record_name is None:
        raise ValueError(f"{dist.metadata['Name']} has no RECORD; it cannot be repacked")
    rows = []
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in sorted(files, key=str):
            name = str(relative).replace("\\", "/")
            if name == record_name or name.endswith(".dist-info/INSTALLER") or name.endswith(
                ".dist-info/direct_url.json"
            ):
                continue
            path = site / relative
            if not path.is_file():
                continue
            data = path.read_bytes()
            archive.writestr(_entry(name, path), data)
            rows.append((name, _digest(data), str(len(data))))
        rows.append((record_name, "", ""))
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        archive.writestr(_entry(record_name), buffer.getvalue())
    tmp.replace(target)
    return target


def _entry(name: str, path: Path | None = None) -> zipfile.ZipInfo:
    """A zip entry with a fixed date, so the same files make the same wheel bytes."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    executable = path is not None and path.stat().st_mode & 0o111
    info.external_attr = (0o755 if executable else 0o644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def uv_binary() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin  # the `uv` package from PyPI, when installed

        return find_uv_bin()
    except Exception:
        return None


def build_project(source: Path, out_dir: Path) -> Path:
    """Build a wheel of the project at `source` (an editable or local install)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.whl"))
    uv = uv_binary()
    if uv:
        command = [uv, "build", "--wheel", "--quiet", "--out-dir", str(out_dir), str(source)]
    else:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out_dir), str(source)]
    result = subprocess.run(command, capture_output=True, text=True)
    built = set(out_dir.glob("*.whl")) - before
    if result.returncode != 0 or len(built) != 1:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"building a wheel of {source} failed: {' / '.join(tail)}")
    return built.pop()

"""What `pip install` costs: the SDK install against the platform install (what every
install pulled before the split: the SDK and the platform were one dependency list) and
the platform with both clouds' SDKs. Figures: packages, MB on disk, seconds.

Each install is a clean `uv venv` + `uv pip install` of this checkout (a copy, so the build
writes nothing here), from uv's cache where it holds everything (`--offline`), else from
the index. Seconds depend on that cache and this shared machine: read them as a ratio.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from deploy.environments import uv

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "graticule", "deploy", "render", "modules")
INSTALLS = {"sdk": "", "platform (before: every install)": "[platform]", "platform + aws + gcp": "[platform,aws,gcp]"}


def _copy_source(into: Path) -> Path:
    source = into / "graticule-src"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    return source


def _disk_mb(path: Path) -> float:
    total = sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 1e6


def _install(work: Path, source: Path, label: str, extras: str) -> dict:
    venv = work / f"venv-{len(list(work.glob('venv-*')))}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("UV_")}
    env["UV_LINK_MODE"] = "copy"  # disk figures count real files, not hardlinks into the cache
    subprocess.run([uv.binary(), "venv", "--quiet", "--python", "3.11", str(venv)], check=True, env=env)
    started = time.perf_counter()
    argv = [uv.binary(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), f"{source}{extras}"]
    offline = subprocess.run([*argv, "--offline"], env=env, capture_output=True, text=True)
    if offline.returncode != 0:
        subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    listing = subprocess.run([uv.binary(), "pip", "list", "--format", "json", "--python", str(venv / "bin" / "python")],
                             env=env, check=True, capture_output=True, text=True).stdout
    return {"install": label, "packages": len(json.loads(listing)), "mb": _disk_mb(venv), "seconds": seconds,
            "cache": "offline" if offline.returncode == 0 else "index"}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        work = Path(tmp)
        source = _copy_source(work)
        rows = [_install(work, source, label, extras) for label, extras in INSTALLS.items()]
    sdk = rows[0]
    print(f"{'install':<34} {'packages':>8} {'MB':>8} {'seconds':>8}  vs sdk (pkgs, MB, s)  from")
    for row in rows:
        ratios = (f"{row['packages'] / sdk['packages']:.1f}x {row['mb'] / sdk['mb']:.1f}x "
                  f"{row['seconds'] / sdk['seconds']:.1f}x")
        print(f"{row['install']:<34} {row['packages']:>8} {row['mb']:>8.0f} {row['seconds']:>8.1f}  "
              f"{ratios:<20} {row['cache']}")


if __name__ == "__main__":
    main()

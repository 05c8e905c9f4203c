"""The instances' Debian root filesystem: made once with debootstrap, cached, shared read-only.

The cache lives under $GRATICULE_SIM_ROOTFS (default ~/.cache/graticule/sim). Its name
carries the release and the package list, so a change of either makes a new root. A lock
file keeps two test processes from building it at once; a build goes to a temporary
directory renamed into place only when complete, so a half-made root is never used.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

RELEASE = "bookworm"  # the release the AWS stack's image selects (Debian 12)
# python3 + boto3 so user data can run Python and talk to the API as on a VM with the
# Debian packages installed; curl for IMDS calls from shell user data.
PACKAGES = ("python3", "python3-boto3", "ca-certificates", "curl", "procps")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def cache_dir() -> Path:
    configured = os.environ.get("GRATICULE_SIM_ROOTFS")
    return Path(configured) if configured else Path.home() / ".cache" / "graticule" / "sim"


def apt_sources() -> list[Path]:
    return [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]


def apt_mirror(sources: list[Path] | None = None) -> str:
    """The Debian mirror apt is configured with here (proxies and mirrors work through it)."""
    for source in apt_sources() if sources is None else sources:
        if not source.is_file():
            continue
        for line in source.read_text().splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and "security" not in line:
                url = next((w for w in words[1:] if "://" in w), None)
                if url:
                    return url
    return DEFAULT_MIRROR


def root_name() -> str:
    digest = hashlib.sha256(" ".join((RELEASE, *PACKAGES)).encode()).hexdigest()[:10]
    return f"{RELEASE}-minbase-{digest}"


def ensure_rootfs() -> Path:
    """The cached root, built with debootstrap when missing (about 30 s here)."""
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    root = base / root_name()
    if (root / "usr/bin/python3").exists():
        return root
    with open(base / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "usr/bin/python3").exists():
            return root
        building = base / f"{root.name}.building"
        shutil.rmtree(building, ignore_errors=True)
        command = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                   RELEASE, str(building), apt_mirror()]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            raise RuntimeError(f"debootstrap failed ({result.returncode}): {result.stdout[-2000:]}{result.stderr}")
        # Nothing from the build's apt caches is needed at run time.
        shutil.rmtree(building / "var/cache/apt/archives", ignore_errors=True)
        (building / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        building.rename(root)
    return root

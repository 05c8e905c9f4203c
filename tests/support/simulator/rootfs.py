"""The sandboxes' shared Debian root: made once with debootstrap, cached, never written to.

Every sandbox mounts it read-only as the lower layer of an overlay, so one debootstrap
serves all instances and all later test runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
from pathlib import Path

CACHE_ENV = "GRATICULE_SIM_ROOTFS"
DEFAULT_CACHE = Path.home() / ".cache" / "graticule" / "sim"
SUITE = "bookworm"  # the release the AWS stack's Debian image selects
# python3 runs the tests' user data and tiny servers; python3-boto3 lets user data call the
# AWS API with the role credentials the metadata stand-in hands out.
PACKAGES = ("python3", "python3-boto3")
VERSION = "v1"  # bump when PACKAGES change so old caches are not reused
FALLBACK_MIRROR = "http://deb.debian.org/debian"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def apt_mirror() -> str:
    """The Debian mirror apt is configured with (so proxies and local mirrors keep working)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        with contextlib.suppress(OSError):
            text = source.read_text()
            for match in re.finditer(r"(?:^deb\s+(?:\[[^\]]*\]\s+)?|^URIs:\s*)(\S+)", text, re.MULTILINE):
                uri = match.group(1)
                if "security" not in uri:
                    return uri
    return FALLBACK_MIRROR


def ensure_rootfs() -> Path:
    """The cached root, debootstrapped first if missing (one builder at a time, atomic rename)."""
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    root = base / f"{SUITE}-minbase-{VERSION}"
    if (root / "usr" / "bin" / "python3").exists():
        return root
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "usr" / "bin" / "python3").exists():
            return root
        partial = base / f"{root.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        log = base / f"{root.name}.debootstrap.log"
        command = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(partial),
                   apt_mirror()]
        with open(log, "wb") as sink:
            result = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise RuntimeError(f"debootstrap failed ({result.returncode}); see {log}")
        partial.rename(root)
    return root

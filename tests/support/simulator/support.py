"""Whether this machine can run the simulator (tests skip with this reason when it cannot)."""

from __future__ import annotations

import os
import shutil


def simulator_unavailable() -> str | None:
    """Why the simulator cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the machine simulator needs root (network namespaces, mounts, chroot)"
    missing = [tool for tool in ("ip", "unshare", "nsenter", "nft", "debootstrap", "mount") if not shutil.which(tool)]
    if missing:
        return f"the machine simulator needs {', '.join(missing)} (apt-get install iproute2 util-linux nftables " \
               "debootstrap)"
    return None

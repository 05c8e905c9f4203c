"""The state volume: wait for it, make a file system only when it has none, mount it.

On a VM the EBS volume appears as a block device (/dev/xvdf, or its NVMe name, which
udev links to it) some seconds after boot, once Terraform attached it. The simulator has
no block devices: it bind-mounts a per-volume directory at the volume's mount point when
the attachment appears, so boot finds a mount point there and uses it as it is.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def _has_filesystem(device: str) -> bool:
    result = subprocess.run(["blkid", "-o", "value", "-s", "TYPE", device], capture_output=True, text=True)
    return result.returncode == 0 and bool(result.stdout.strip())


def _root_disk() -> str | None:
    """The block device holding / (e.g. nvme0n1), from /proc/mounts and sysfs."""
    for line in Path("/proc/mounts").read_text().splitlines():
        source, target = line.split()[:2]
        if target == "/" and source.startswith("/dev/"):
            name = Path(source).resolve().name
            parent = Path(f"/sys/class/block/{name}/..").resolve().name
            return parent if parent != "block" else name
    return None


def find_device(device: str, sys_block: Path = Path("/sys/block")) -> str | None:
    """`device` when it exists; on Nitro instances (NVMe, where no udev rule may link
    /dev/xvdf) the one EBS disk that is not the root disk, by its serial ("vol...")."""
    if Path(device).exists():
        return device
    root = _root_disk() if sys_block.exists() else None
    found = []
    for disk in sorted(sys_block.glob("nvme*n*")) if sys_block.exists() else []:
        serial = disk / "device" / "serial"
        if disk.name != root and serial.exists() and serial.read_text().strip().startswith("vol"):
            found.append(f"/dev/{disk.name}")
    return found[0] if len(found) == 1 else None


def mount_state(mount_point: Path, device: str, timeout: float = 600.0, log=print, *,
                what: str = "state volume", label: str = "graticule-state") -> str:
    """Returns how the state was found: "mounted" (already) or "device" (mounted here).
    `what` names the volume in messages; `label` is a new file system's label."""
    deadline = time.monotonic() + timeout
    waited = False
    while True:
        if os.path.ismount(mount_point):
            return "mounted"
        found = find_device(device)
        if found:
            device = found
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {what} did not appear at {device} within {timeout:.0f} s")
        if not waited:
            log(f"graticule: waiting for the {what} at {device} or a mount at {mount_point}")
            waited = True
        time.sleep(1)
    if not _has_filesystem(device):
        subprocess.run(["mkfs.ext4", "-q", "-L", label, device], check=True)
    mount_point.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-o", "noatime", device, str(mount_point)], check=True)
    return "device"

"""EBS volumes in the simulator: an attached volume is a directory of the host, bind-mounted
into the instance at the mount point its `mount-point` tag names.

The sandboxes have no block devices (`/dev` is the host's), so a volume cannot appear as
/dev/xvdf; instead, once moto reports the volume attached to a booted instance, its
directory `WORKDIR/volumes/VOLUME_ID` (kept for the simulator's lifetime, so a replaced
instance gets the same data back) is bind-mounted inside the instance's mount namespace.
Code on the instance sees a mount point there, as it would after mounting the device.
A volume without the tag is not presented. Detaching is not modelled (the instance's
mounts go with its namespace when it stops).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

MOUNT_TAG = "mount-point"


class Volumes:
    def __init__(self, moto, workdir: Path) -> None:
        self.ec2 = moto.client("ec2")
        self.root = Path(workdir) / "volumes"
        self.mounted: dict[str, set[str]] = {}  # instance id -> volume ids presented

    def attachments(self) -> list[tuple[str, str, str]]:
        """(instance id, volume id, mount point) of every attached, tagged volume."""
        found = []
        for page in self.ec2.get_paginator("describe_volumes").paginate():
            for volume in page["Volumes"]:
                tags = {t["Key"]: t["Value"] for t in volume.get("Tags", [])}
                if MOUNT_TAG not in tags:
                    continue
                for attachment in volume.get("Attachments", []):
                    if attachment.get("State") in ("attached", "attaching"):
                        found.append((attachment["InstanceId"], volume["VolumeId"], tags[MOUNT_TAG]))
        return found

    def sync(self, sandboxes: dict) -> None:
        """Present newly attached volumes to booted instances."""
        for instance_id, volume_id, mount_point in self.attachments():
            box = sandboxes.get(instance_id)
            if box is None or not box.extra.get("booted") or volume_id in self.mounted.get(instance_id, set()):
                continue
            bind_into(box, self.root / volume_id, mount_point)
            self.mounted.setdefault(instance_id, set()).add(volume_id)

    def forget(self, instance_id: str) -> None:
        self.mounted.pop(instance_id, None)


def bind_into(box, source: Path, mount_point: str) -> None:
    """Mount host directory `source` (made if missing) at `mount_point` inside a booted instance."""
    source.mkdir(parents=True, exist_ok=True)
    source.chmod(0o755)
    target = box.root / mount_point.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    # In the instance's mount namespace (not the host's): the mount goes with it.
    subprocess.run(["nsenter", "-t", str(box.init_pid()), "-m", "--", "mount", "--bind", str(source),
                    str(target)], check=True, capture_output=True)

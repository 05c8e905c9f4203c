"""A guest's own power-off, turned into what EC2 does for the instance's shutdown behaviour.

`poweroff` and `shutdown` inside an instance (guest/poweroff, installed in /usr/local/sbin,
ahead of anything in PATH) write /var/lib/sim/shutdown in the instance's root. On its
next pass the simulator reads the instance's `InstanceInitiatedShutdownBehavior` from moto
and calls what EC2 would: TerminateInstances for `terminate`, StopInstances for `stop`
(EC2's default). moto's state then makes the simulator stop the sandbox, as for any
instance terminated or stopped through the API.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from .sandbox import GUEST, Sandbox

REQUEST = Path("var/lib/sim/shutdown")  # inside an instance's root
COMMANDS = ("poweroff", "shutdown")


def install(root: Path) -> None:
    """The guest's poweroff and shutdown (one script, which tells them apart by name)."""
    sbin = root / "usr/local/sbin"
    sbin.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(GUEST / "poweroff", sbin / "poweroff")
    (sbin / "poweroff").chmod(0o755)
    with contextlib.suppress(FileExistsError):
        (sbin / "shutdown").symlink_to("poweroff")


def carry_out(ec2, sandboxes: dict[str, Sandbox], done: dict[str, str]) -> None:
    """For each booted instance that asked to power off (and was not handled yet), do what
    EC2 does; `done` records {instance id: "terminate" | "stop"}."""
    for instance_id, box in list(sandboxes.items()):
        if instance_id in done or not box.extra.get("booted") or not (box.root / REQUEST).exists():
            continue
        attribute = ec2.describe_instance_attribute(InstanceId=instance_id,
                                                    Attribute="instanceInitiatedShutdownBehavior")
        behaviour = attribute["InstanceInitiatedShutdownBehavior"]["Value"]
        if behaviour == "terminate":
            ec2.terminate_instances(InstanceIds=[instance_id])
        else:
            ec2.stop_instances(InstanceIds=[instance_id])
        done[instance_id] = behaviour

"""Users' home directories on AWS: one encrypted gp3 EBS volume per user, kept across servers.

Why a per-user EBS volume and not EFS with an access point per user: a home is used by
one server at a time, so a block volume's lower price ($0.08/GB-month for gp3 against
EFS Standard's $0.30) and local-disk latency (pip installs, git checkouts, many small
files) win, and nothing runs all the time (no mount targets, no file system per
platform). What it costs: a volume lives in one zone, so a user's servers are pinned to
the zone of their volume (created in the first zone of the platform's private subnets,
found again by its tags: `platform`, `user`, `role = home`). When that zone has no
capacity for the profile, the start fails saying so (zone, profile, what to do); the
volume is never moved silently (a snapshot copy to another zone takes minutes and
would leave two homes).

The volume is attached (at HOME_DEVICE) once the server's instance runs, and detaches
itself when that instance is terminated; the next server waits until it is `available`.
Its `mount-point` tag says where the notebook machine mounts it (the simulator mounts it
there too). The volumes are created by the hub at run time, not by Terraform; `platform destroy`
deletes them after Terraform's resources (`delete_all`), as it removes everything else.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deploy.cloud.aws_clients import new_client
from deploy.cloud.machines import TAG_PLATFORM, TAG_ROLE, TAG_USER, MachinesError
from modules.naming import HOME_VOLUME_GIB

HOME_ROLE = "home"
HOME_DEVICE = "/dev/xvdh"
MOUNT_TAG = "mount-point"
DEFAULT_SIZE_GIB = HOME_VOLUME_GIB  # what cost.json counts
_GONE = ("deleting", "deleted", "error")


def home_mount_point(user: str) -> str:
    return f"/home/{user}"


@dataclass(frozen=True)
class HomeVolume:
    id: str
    zone: str
    state: str  # EC2's word: creating, available, in-use
    attached_to: str | None = None


class AWSHomeVolumes:
    def __init__(self, region: str, platform: str, *, size_gib: int = DEFAULT_SIZE_GIB,
                 endpoint_url: str | None = None, client: Any = None) -> None:
        self.region, self.platform, self.size_gib = region, platform, size_gib
        self.endpoint_url = endpoint_url
        self._client = client

    @property
    def ec2(self):
        if self._client is None:
            self._client = new_client("ec2", self.region, self.endpoint_url)
        return self._client

    def _call(self, operation: str, **arguments) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.ec2, operation)(**arguments)
        except (ClientError, BotoCoreError) as exc:
            raise MachinesError(f"aws ec2 {operation} failed: {exc}") from None

    def find(self, user: str) -> HomeVolume | None:
        """The user's home volume, the oldest if a race ever made two."""
        answer = self._call("describe_volumes", Filters=[
            {"Name": f"tag:{TAG_PLATFORM}", "Values": [self.platform]},
            {"Name": f"tag:{TAG_USER}", "Values": [user]},
            {"Name": f"tag:{TAG_ROLE}", "Values": [HOME_ROLE]},
        ])
        volumes = sorted((v for v in answer.get("Volumes", []) if v.get("State") not in _GONE),
                         key=lambda v: (v.get("CreateTime") or 0, v["VolumeId"]))
        return _volume(volumes[0]) if volumes else None

    def ensure(self, user: str, zone: str, tags: dict[str, str] | None = None) -> HomeVolume:
        """The user's home volume; created in `zone` when they have none yet."""
        found = self.find(user)
        if found is not None:
            return found
        all_tags = {"Name": f"{self.platform}-home-{user}", "managed-by": "graticule", **(tags or {}),
                    TAG_PLATFORM: self.platform, TAG_USER: user, TAG_ROLE: HOME_ROLE,
                    MOUNT_TAG: home_mount_point(user)}
        # The same token for the same user: a retried create makes no second volume.
        token = hashlib.sha256(f"{self.platform}\0home\0{user}".encode()).hexdigest()
        answer = self._call(
            "create_volume", AvailabilityZone=zone, Size=self.size_gib, VolumeType="gp3", Encrypted=True,
            ClientToken=token,
            TagSpecifications=[{"ResourceType": "volume",
                                "Tags": [{"Key": k, "Value": v} for k, v in all_tags.items()]}],
        )
        return _volume(answer)

    def describe(self, volume_id: str) -> HomeVolume | None:
        answer = self._call("describe_volumes", Filters=[{"Name": "volume-id", "Values": [volume_id]}])
        volumes = answer.get("Volumes", [])
        return _volume(volumes[0]) if volumes else None

    def wait_available(self, volume_id: str, timeout: float = 300.0, every: float = 1.0) -> HomeVolume:
        """Until the volume is free (a previous server's instance may still be terminating)."""
        return wait_free(lambda: self.describe(volume_id), f"home volume {volume_id}", timeout, every)

    def attach(self, volume_id: str, instance_id: str) -> None:
        self._call("attach_volume", VolumeId=volume_id, InstanceId=instance_id, Device=HOME_DEVICE)

    def delete_all(self, timeout: float = 0.0, every: float = 2.0) -> list[str]:
        """`platform destroy`: every user's home volume of the platform, deleted once detached
        (waiting up to `timeout` for terminating servers to let go); refused while one is
        still attached after that."""
        answer = self._call("describe_volumes", Filters=[{"Name": f"tag:{TAG_PLATFORM}", "Values": [self.platform]},
                                                         {"Name": f"tag:{TAG_ROLE}", "Values": [HOME_ROLE]}])
        volumes = [_volume(raw) for raw in answer.get("Volumes", []) if raw.get("State") not in _GONE]
        volumes = wait_all_free(volumes, lambda v: self.describe(v.id), "home volumes", timeout, every)
        for volume in volumes:
            self._call("delete_volume", VolumeId=volume.id)
        return [volume.id for volume in volumes]


def _in_use(volume: HomeVolume) -> bool:
    return bool(volume.attached_to) or volume.state != "available"


def _holder(volume: HomeVolume) -> str:
    return f"attached to {volume.attached_to}" if volume.attached_to else volume.state


def wait_free(describe: Callable[[], HomeVolume | None], what: str, timeout: float, every: float) -> HomeVolume:
    """The volume `describe` finds, once no machine has it (a previous server's may still be
    going away); `what` names it in the errors (gone, or still in use after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while True:
        volume = describe()
        if volume is None:
            raise MachinesError(f"{what} no longer exists")
        if not _in_use(volume):
            return volume
        if time.monotonic() > deadline:
            raise MachinesError(f"{what} is still {volume.state}"
                                f"{f' (attached to {volume.attached_to})' if volume.attached_to else ''} "
                                f"after {timeout:.0f} s")
        time.sleep(every)


def wait_all_free(volumes: list[HomeVolume], describe: Callable[[HomeVolume], HomeVolume | None], what: str,
                  timeout: float, every: float) -> list[HomeVolume]:
    """`volumes` as they are once none is in use (those gone meanwhile left out), waiting up to
    `timeout` s; refused whole, naming who holds each, while one still is after that."""
    deadline = time.monotonic() + timeout
    while (busy := [v for v in volumes if _in_use(v)]) and time.monotonic() < deadline:
        time.sleep(every)
        volumes = [found for v in volumes if (found := describe(v)) is not None]
    if busy:
        listed = ", ".join(f"{v.id} ({_holder(v)})" for v in busy)
        raise MachinesError(f"{what} still in use by notebook servers: {listed}; stop the servers")
    return volumes


def _volume(raw: dict) -> HomeVolume:
    attached = [a["InstanceId"] for a in raw.get("Attachments", []) if a.get("State") in ("attaching", "attached")]
    return HomeVolume(id=raw["VolumeId"], zone=raw["AvailabilityZone"], state=raw.get("State", "creating"),
                      attached_to=attached[0] if attached else None)

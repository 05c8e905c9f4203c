"""Users' home directories on GCP: one persistent disk per user, kept across servers.

The GCP twin of `deploy.cloud.home_volumes` (why a per-user block volume rather than a
shared file system: the same reasons; Filestore's smallest instance is 1 TiB besides).
The disk is `pd-balanced` (SSD-backed, $0.10/GB-month in us-central1 against
pd-standard's $0.04, which is a spinning disk: too slow for pip installs and git
checkouts), HOME_VOLUME_GIB in size, encrypted with the platform's KMS key (the same key
as the instance templates' boot disks), labelled `platform`, `user`, `role = home`,
`budget` and `mount-point` (the simulator mounts it there, as on AWS). Its name is
`<platform>-home-<user>`: the hub's launch permission covers only names of the platform
(modules.gcp.identity), and a retried insert (the same `requestId`) makes no second disk.

A zonal disk attaches only in its zone, so a user's servers are pinned there (created in
the first zone of the platform's region). Unlike EBS, a disk is attached when the
instance is created (`instances.insert` names it in `disks`), and is left, unattached,
when that instance is deleted (`autoDelete: false`); Compute refuses to attach it
read-write to a second instance, so the next server waits until `users` is empty.

The hub makes the disks at run time, outside Terraform's state; `platform destroy`
deletes them (`delete_all`) after ending the notebook instances.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping

from deploy.cloud import gcp_placement as placement
from deploy.cloud.gcp import GCPMachines, _compute, _json
from deploy.cloud.home_volumes import (
    HOME_ROLE,
    MOUNT_TAG,
    HomeVolume,
    home_mount_point,
    wait_all_free,
    wait_free,
)
from deploy.cloud.machines import TAG_PLATFORM, TAG_ROLE, TAG_USER, MachinesError
from modules.naming import HOME_VOLUME_GIB

DISK_TYPE = "pd-balanced"
HOME_DEVICE_NAME = "home"  # the guest sees it at /dev/disk/by-id/google-home
HOME_DEVICE = f"/dev/disk/by-id/google-{HOME_DEVICE_NAME}"
_NAME_BAD = re.compile(r"[^a-z0-9-]")
_NAMESPACE = uuid.UUID("6c1c0a47-3d55-4c1e-8f0e-2a7d4f1f9b10")  # requestIds of home disk inserts


def home_disk_name(platform: str, user: str) -> str:
    """`<platform>-home-<user>`, a valid GCE name; a user name GCE cannot spell gets a hash."""
    plain = f"{platform}-home-{user}"
    name = _NAME_BAD.sub("-", plain.lower()).strip("-")
    if name == plain and len(name) <= 63:
        return name
    digest = hashlib.sha256(plain.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def mount_label(path: str) -> str:
    """A path as a label value (GCE allows no `/`): `/home/alice` is `_home_alice`."""
    return placement.label_value(path.replace("/", "_"))


class GCPHomeDisks:
    def __init__(self, machines: GCPMachines, platform: str, *, size_gib: int = HOME_VOLUME_GIB,
                 kms_key: str | None = None) -> None:
        """`machines`: the Compute clients (and project) to use; `kms_key`: the key that
        encrypts a new disk (None: Google's own)."""
        self.machines, self.platform, self.size_gib, self.kms_key = machines, platform, size_gib, kms_key

    @property
    def project(self) -> str:
        return self.machines.project

    def source(self, volume: HomeVolume) -> str:
        """What an instance's attached disk names."""
        return f"projects/{self.project}/zones/{volume.zone}/disks/{volume.id}"

    def _listed(self, labels: Mapping[str, str]) -> list[HomeVolume]:
        compute = _compute()
        condition = " AND ".join(f'(labels.{k} = "{v}")' for k, v in placement.labels(labels).items())
        request = compute.AggregatedListDisksRequest(project=self.project, filter=condition)
        pages = self.machines._checked("disks.aggregatedList", lambda: self.machines.client(
            "DisksClient").aggregated_list(request=request))
        found = [_volume(_json(disk)) for _, scoped in pages for disk in scoped.disks]
        return sorted(found, key=lambda v: (v.zone, v.id))

    def find(self, user: str) -> HomeVolume | None:
        found = self._listed({TAG_PLATFORM: self.platform, TAG_ROLE: HOME_ROLE, TAG_USER: user})
        return found[0] if found else None

    def ensure(self, user: str, zone: str, labels: Mapping[str, str] | None = None) -> HomeVolume:
        """The user's home disk; created in `zone` when they have none yet."""
        found = self.find(user)
        if found is not None:
            return found
        compute, name = _compute(), home_disk_name(self.platform, user)
        all_labels = placement.labels({**(labels or {}), TAG_PLATFORM: self.platform, TAG_USER: user,
                                       TAG_ROLE: HOME_ROLE})
        all_labels |= {"managed-by": "graticule", MOUNT_TAG: mount_label(home_mount_point(user))}
        body = {"name": name, "sizeGb": str(self.size_gib), "type": f"zones/{zone}/diskTypes/{DISK_TYPE}",
                "labels": all_labels, "description": f"graticule {self.platform}: {user}'s home"}
        if self.kms_key:
            body["diskEncryptionKey"] = {"kmsKeyName": self.kms_key}
        request = compute.InsertDiskRequest(
            project=self.project, zone=zone, request_id=str(uuid.uuid5(_NAMESPACE, f"{self.platform}\0{user}")),
            disk_resource=compute.Disk.from_json(json.dumps(body)))
        from google.api_core import exceptions

        what = f"disks.insert {name} in {zone}"
        try:
            operation = self.machines._call(what, lambda: self.machines.client("DisksClient").insert(request=request))
        except exceptions.Conflict:
            operation = None  # made by an earlier try
        except exceptions.GoogleAPICallError as error:
            raise MachinesError(f"gcp compute {what} failed: {error}") from None
        if operation is not None:
            errors = (self.machines._wait(zone, operation, what).get("error") or {}).get("errors") or []
            if errors and not all(e.get("code") == "RESOURCE_ALREADY_EXISTS" for e in errors):
                raise MachinesError(f"gcp compute {what} failed: "
                                    + "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors))
        made = self.describe(zone, name)
        if made is None:
            raise MachinesError(f"gcp compute {what}: the disk is not there after the insert")
        return made

    def describe(self, zone: str, name: str) -> HomeVolume | None:
        from google.api_core import exceptions

        try:
            answer = self.machines._call(f"disks.get {name}", lambda: self.machines.client("DisksClient").get(
                project=self.project, zone=zone, disk=name))
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as error:
            raise MachinesError(f"gcp compute disks.get {name} failed: {error}") from None
        return _volume(_json(answer))

    def wait_available(self, volume: HomeVolume, timeout: float = 300.0, every: float = 1.0) -> HomeVolume:
        """Until no instance has the disk (a previous server's instance may still be deleting)."""
        return wait_free(lambda: self.describe(volume.zone, volume.id), f"home disk {volume.id}", timeout, every)

    def delete_all(self, timeout: float = 0.0, every: float = 2.0) -> list[str]:
        """`platform destroy`: every user's home disk of the platform, deleted once no instance
        has it (waiting up to `timeout` for deleting servers to let go); refused while one is
        still attached after that."""
        volumes = self._listed({TAG_PLATFORM: self.platform, TAG_ROLE: HOME_ROLE})
        volumes = wait_all_free(volumes, lambda v: self.describe(v.zone, v.id), "home disks", timeout, every)
        for volume in volumes:
            what = f"disks.delete {volume.id} in {volume.zone}"
            operation = self.machines._checked(what, lambda v=volume: self.machines.client("DisksClient").delete(
                project=self.project, zone=v.zone, disk=v.id))
            errors = (self.machines._wait(volume.zone, operation, what).get("error") or {}).get("errors") or []
            if errors:
                raise MachinesError(f"gcp compute {what} failed: " + "; ".join(str(e.get("message")) for e in errors))
        return [volume.id for volume in volumes]


def _volume(disk: dict) -> HomeVolume:
    """A disk as the layer's HomeVolume: `available` when no instance has it, else `in-use`."""
    users = disk.get("users") or []
    status = disk.get("status", "CREATING")
    state = "creating" if status == "CREATING" else ("in-use" if users else "available")
    return HomeVolume(id=disk["name"], zone=str(disk.get("zone", "")).rsplit("/", 1)[-1], state=state,
                      attached_to=users[0].rsplit("/", 1)[-1] if users else None)

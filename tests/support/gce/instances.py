"""An instance as Compute makes it: the template's properties, the request's fields over
them, references made into URLs, and the checks Compute does itself on top of the schema
(label format, scheduling that the machine can have, a subnetwork in the zone's region)."""

from __future__ import annotations

import copy
import re

from tests.support.gce.capacity import region_of
from tests.support.gce.validation import ApiError, invalid_field

API = "https://www.googleapis.com/compute/v1"
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_SUBNETWORK = re.compile(r"(?:.*/)?(?:projects/[^/]+/)?regions/([^/]+)/subnetworks/([^/]+)$")


def url(project: str, *parts: str) -> str:
    return "/".join([API, "projects", project, *parts])


def last(reference: str) -> str:
    return reference.rstrip("/").rsplit("/", 1)[-1]


def template_name(reference: str) -> str:
    match = re.fullmatch(r"(?:.*/)?(?:projects/[^/]+/)?global/instanceTemplates/([^/]+)", reference or "")
    if not match:
        raise invalid_field("sourceInstanceTemplate", reference, "The URL is malformed.")
    return match.group(1)


def subnetwork_of(reference: str, zone: str) -> tuple[str, str]:
    """(region, name) of a subnetwork reference; a bare name is in the zone's region."""
    match = _SUBNETWORK.fullmatch(reference)
    return (match.group(1), match.group(2)) if match else (region_of(zone), last(reference))


def check_labels(labels: dict, where: str) -> None:
    if len(labels) > 64:
        raise invalid_field(where, "", "At most 64 labels may be set.")
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
            raise invalid_field(where, "", f"Label '{key}': '{value}' violates format constraints. Keys start with a "
                                           "lowercase letter; keys and values can only contain lowercase letters, "
                                           "numeric characters, underscores and dashes, at most 63 characters.")


def check_metadata(items: list[dict]) -> None:
    """Compute's limits: 256 KB a value, 512 KB in all."""
    for item in items:
        if len(item.get("value", "").encode()) > 256 * 1024:
            raise invalid_field(f"resource.metadata.items[{item.get('key')}].value", "...", "Value too large: "
                                "a metadata value can be at most 256 KB.")
    if sum(len(item.get("key", "").encode()) + len(item.get("value", "").encode()) for item in items) > 512 * 1024:
        raise invalid_field("resource.metadata", "...", "Metadata is too large: at most 512 KB in all.")


def check_scheduling(instance: dict) -> None:
    scheduling = instance.get("scheduling", {})
    spot = scheduling.get("provisioningModel") == "SPOT" or scheduling.get("preemptible")
    migrate = scheduling.get("onHostMaintenance", "MIGRATE") == "MIGRATE"
    if spot and (migrate or scheduling.get("automaticRestart", True)):
        raise ApiError(400, "Invalid value for field 'resource.scheduling': Spot and preemptible instances must "
                            "have onHostMaintenance TERMINATE and automaticRestart false.", "invalid")
    if instance.get("guestAccelerators") and migrate:
        raise ApiError(400, "Instances with guest accelerators do not support live migration.", "badRequest")
    if scheduling.get("instanceTerminationAction") and not spot and not scheduling.get("maxRunDuration"):
        raise ApiError(400, "Invalid value for field 'resource.scheduling.instanceTerminationAction': "
                            f"'{scheduling['instanceTerminationAction']}'. Only Spot VMs or VMs with a maximum "
                            "run duration take a termination action.", "invalid")


def build(project: str, zone: str, name: str, properties: dict, overrides: dict) -> dict:
    """The instance's resource fields before the store adds identity, status and addresses."""
    instance = copy.deepcopy(properties)
    instance.update(copy.deepcopy({key: value for key, value in overrides.items() if key != "name"}))
    instance["name"] = name
    if "machineType" not in instance:
        raise ApiError(400, "Invalid value for field 'resource.machineType': ''. Machine type must be specified.",
                       "invalid")
    instance["machineType"] = url(project, "zones", zone, "machineTypes", last(instance["machineType"]))
    for accelerator in instance.get("guestAccelerators", []):
        accelerator["acceleratorType"] = url(project, "zones", zone, "acceleratorTypes",
                                             last(accelerator["acceleratorType"]))
    labels = instance.get("labels", {})
    check_labels(labels, "resource.labels")
    check_metadata(instance.get("metadata", {}).get("items", []))
    check_scheduling(instance)
    instance["disks"] = [_attached(project, zone, name, index, disk)
                         for index, disk in enumerate(instance.get("disks", []))]
    if not instance["disks"]:
        raise ApiError(400, "Invalid value for field 'resource.disks': ''. Boot disk must be specified.", "invalid")
    for key in ("reservationAffinity", "resourcePolicies"):
        instance.pop(key, None)  # template-only details the fake does not model
    return instance


def _attached(project: str, zone: str, name: str, index: int, disk: dict) -> dict:
    params = disk.get("initializeParams", {})
    disk_name = params.get("diskName") or (name if disk.get("boot") else f"{name}-{index}")
    attached = {key: value for key, value in disk.items() if key not in ("initializeParams", "diskEncryptionKey")}
    attached.update({
        "kind": "compute#attachedDisk", "type": disk.get("type", "PERSISTENT"), "mode": disk.get("mode", "READ_WRITE"),
        "index": index, "deviceName": disk.get("deviceName") or f"persistent-disk-{index}",
        "boot": bool(disk.get("boot")), "autoDelete": bool(disk.get("autoDelete")),
        "interface": disk.get("interface", "SCSI"),
        "source": disk.get("source") or url(project, "zones", zone, "disks", disk_name),
        "diskSizeGb": str(params.get("diskSizeGb", disk.get("diskSizeGb", "10"))),
    })
    return attached

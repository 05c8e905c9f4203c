"""Persistent disks in the fake Compute API (tests/support/gce/): disks insert, get and
delete, registered with the fake's handlers (only where it does not serve them itself).

The GCE simulator finds where to mount a disk attached to an instance by its
`mount-point` label (`disks.get`), as the AWS simulator reads an EBS volume's tag; the
rendered stack's state disk carries it. Requests are validated by the fake against the
discovery document before they get here, and the answers checked against `Disk`, as for
everything else it serves. Importing this module registers the methods.
"""

from __future__ import annotations

import weakref

from tests.support.gce.handlers import HANDLERS, serves
from tests.support.gce.instances import last, url
from tests.support.gce.store import Store, now
from tests.support.gce.validation import ApiError, not_found

_DISKS: weakref.WeakKeyDictionary[Store, dict[tuple[str, str], dict]] = weakref.WeakKeyDictionary()


def _disks(store: Store) -> dict[tuple[str, str], dict]:
    return _DISKS.setdefault(store, {})


def insert_disk(store: Store, params: dict, body: dict) -> dict:
    with store.lock:
        if (earlier := store.replay(params)) is not None:
            return earlier
        zone, name = params["zone"], body["name"]
        if (zone, name) in _disks(store):
            raise ApiError(409, f"The resource 'projects/{store.project}/zones/{zone}/disks/{name}' already exists",
                           "alreadyExists")
        disk_type = body.get("type") or "pd-standard"
        disk = store.document.build("Disk", **{
            **body, "id": str(next(store._ids)), "creationTimestamp": now(), "status": "READY",
            "zone": url(store.project, "zones", zone), "sizeGb": str(body.get("sizeGb", "10")),
            "type": url(store.project, "zones", zone, "diskTypes", last(disk_type)),
            "selfLink": url(store.project, "zones", zone, "disks", name)})
        _disks(store)[(zone, name)] = disk
        return store._operation(params, "insert", disk["selfLink"], ("zone", zone), lambda: None)


def get_disk(store: Store, params: dict, body: dict) -> dict:
    found = _disks(store).get((params["zone"], params["disk"]))
    if found is None:
        raise not_found(f"projects/{store.project}/zones/{params['zone']}/disks/{params['disk']}")
    return found


def delete_disk(store: Store, params: dict, body: dict) -> dict:
    with store.lock:
        disk = get_disk(store, params, body)
        del _disks(store)[(params["zone"], params["disk"])]
        return store._operation(params, "delete", disk["selfLink"], ("zone", params["zone"]), lambda: None)


for _method, _handler in (("compute.disks.insert", insert_disk), ("compute.disks.get", get_disk),
                          ("compute.disks.delete", delete_disk)):
    if _method not in HANDLERS:
        serves(_method)(_handler)

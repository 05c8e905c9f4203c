"""Persistent disks in the fake Compute API (tests/support/gce/): disks insert, get and
delete, registered with the fake's handlers (only where it does not serve them itself).

The GCE simulator finds where to mount a disk attached to an instance by its
`mount-point` label (`disks.get`), as the AWS simulator reads an EBS volume's tag; the
rendered stack's state disk carries it. Requests are validated by the fake against the
discovery document before they get here, and the answers checked against `Disk`, as for
everything else it serves. Importing this module registers the methods.
`create_rendered_disks(fake, stack)` creates the rendered stack's `google_compute_disk`s
through the real client, as Terraform would (nothing applies the GCP stack offline).
"""

from __future__ import annotations

import weakref

from google.cloud import compute_v1

from tests.support.gce.clients import client, wait
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


def create_rendered_disks(fake, stack: dict) -> dict[str, str]:
    """Each `google_compute_disk` of `main.tf.json`, created in the fake with its labels;
    {disk name: its path} (what an instance's attached disk `source` names)."""
    from tests.support.gce.rendered import Rendered

    rendered, paths = Rendered(fake, stack), {}
    for resource in stack.get("resource", {}).get("google_compute_disk", {}).values():
        zone = rendered.resolve(resource["zone"])
        disk = compute_v1.Disk(name=resource["name"], description=resource.get("description", ""),
                               size_gb=int(resource.get("size", 10)), labels=dict(resource.get("labels", {})),
                               type_=f"zones/{zone}/diskTypes/{resource.get('type', 'pd-standard')}")
        wait(fake, client(fake, "DisksClient").insert(project=fake.project, zone=zone, disk_resource=disk))
        paths[resource["name"]] = f"projects/{fake.project}/zones/{zone}/disks/{resource['name']}"
    return paths


def disks_of(fake) -> list[tuple[str, str]]:
    """(zone, name) of every disk the fake holds: what a test's "nothing left" check reads."""
    with fake.store.lock:
        return sorted(_disks(fake.store))

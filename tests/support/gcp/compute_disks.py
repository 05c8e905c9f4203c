"""Persistent disks in the fake Compute API (tests/support/gce/): disks insert, get,
aggregatedList (label filters, as for instances) and delete, registered with the fake's
handlers (only where it does not serve them itself).

As Compute does: a disk's `users` are the instances it is attached to, read from the
store; an instance insert that attaches a disk which does not exist in its zone, or one
attached read-write to another instance, is refused; a disk in use cannot be deleted.

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

from tests.support.gce import filters
from tests.support.gce.clients import client, wait
from tests.support.gce.handlers import HANDLERS, serves
from tests.support.gce.instances import last, url
from tests.support.gce.store import Store, now
from tests.support.gce.validation import ApiError, invalid_field, not_found

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


def _users(store: Store, disk: dict) -> list[str]:
    """The instances the disk is attached to (their self links)."""
    return [instance["selfLink"] for instance in store.instances.values()
            if any(last(d.get("source", "")) == disk["name"] and last(instance["zone"]) == last(disk["zone"])
                   for d in instance.get("disks", []) if not d.get("boot"))]


def _seen(store: Store, disk: dict) -> dict:
    users = _users(store, disk)
    return {**disk, "users": users} if users else dict(disk)


def get_disk(store: Store, params: dict, body: dict) -> dict:
    with store.lock:
        found = _disks(store).get((params["zone"], params["disk"]))
        if found is None:
            raise not_found(f"projects/{store.project}/zones/{params['zone']}/disks/{params['disk']}")
        return _seen(store, found)


def aggregated_disks(store: Store, params: dict, body: dict) -> dict:
    if params.get("pageToken") or params.get("maxResults") is not None:
        raise invalid_field("pageToken", params.get("pageToken"), "The fake serves aggregated lists in one page.")
    keep = filters.parse(params.get("filter", ""))
    items: dict[str, dict] = {}
    with store.lock:
        for (zone, _), disk in sorted(_disks(store).items()):
            if keep(disk):
                items.setdefault(f"zones/{zone}", {"disks": []})["disks"].append(_seen(store, disk))
    return store.document.build("DiskAggregatedList", items=items, id=f"projects/{store.project}",
                                selfLink=url(store.project, "aggregated", "disks"))


def delete_disk(store: Store, params: dict, body: dict) -> dict:
    with store.lock:
        disk = get_disk(store, params, body)
        if disk.get("users"):
            raise ApiError(400, f"The disk resource '{disk['selfLink']}' is already being used by "
                                f"'{disk['users'][0]}'", "resourceInUseByAnotherResource")
        del _disks(store)[(params["zone"], params["disk"])]
        return store._operation(params, "delete", disk["selfLink"], ("zone", params["zone"]), lambda: None)


def check_attached(store: Store, zone: str, built: list[dict]) -> None:
    """An instance insert's non-boot disks: each exists in the zone and is not attached
    read-write elsewhere (Compute's RESOURCE_IN_USE_BY_ANOTHER_RESOURCE)."""
    for instance in built:
        for attached in instance.get("disks", []):
            if attached.get("boot") or not attached.get("source"):
                continue
            disk = _disks(store).get((zone, last(attached["source"])))
            if disk is None:
                raise not_found(f"projects/{store.project}/zones/{zone}/disks/{last(attached['source'])}")
            users = _users(store, disk)
            if users and attached.get("mode", "READ_WRITE") == "READ_WRITE":
                raise ApiError(400, f"The disk resource '{disk['selfLink']}' is already being used by "
                                    f"'{users[0]}'", "resourceInUseByAnotherResource")


for _method, _handler in (("compute.disks.insert", insert_disk), ("compute.disks.get", get_disk),
                          ("compute.disks.aggregatedList", aggregated_disks), ("compute.disks.delete", delete_disk)):
    if _method not in HANDLERS:
        serves(_method)(_handler)
if check_attached not in Store.insert_checks:
    Store.insert_checks.append(check_attached)


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

"""Internal IP addresses in the fake Compute API: an instance's `networkIP` as asked for, and
static internal addresses (`compute.addresses.*`, the rendered `google_compute_address`).

As Compute does: an asked-for `networkIP` must lie in the subnetwork's range outside the
four addresses Google keeps (network, gateway, the last two): else the insert is a 400; an
address another instance holds fails the insert's operation with
`IP_IN_USE_BY_ANOTHER_RESOURCE`. A static address is never handed out to an instance that
did not ask for it; the instance that asks for it makes it IN_USE (its `users`), and its
delete makes it RESERVED again. Reserving the address an instance already holds promotes it
(IN_USE at once); one reserved by another address is refused; a static address in use
cannot be deleted.
"""

from __future__ import annotations

import ipaddress

from tests.support.gce.handlers import serves
from tests.support.gce.instances import last, subnetwork_of, url
from tests.support.gce.store import Store, now
from tests.support.gce.validation import ApiError, invalid_field, not_found

IN_USE = "IP_IN_USE_BY_ANOTHER_RESOURCE"


def usable(subnetwork: dict, ip: str) -> bool:
    """Whether Compute lets an instance have `ip` in `subnetwork`."""
    network = ipaddress.ip_network(subnetwork["ipCidrRange"])
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address in network and address not in (network[0], network[1], network[-2], network[-1])


def check_requested(store: Store, zone: str, built: list[dict]) -> dict | None:
    """The operation error of an insert whose instances ask for a held address (None: none does);
    a 400 for an address the subnetwork cannot give."""
    for instance in built:
        for index, interface in enumerate(instance.get("networkInterfaces") or []):
            ip = interface.get("networkIP")
            if not ip:
                continue
            region, name = subnetwork_of(interface.get("subnetwork", "default"), zone)
            subnetwork = store.subnetworks.get((region, name))
            if subnetwork is None:
                continue  # _place says so
            if not usable(subnetwork, ip):
                raise invalid_field(f"resource.networkInterfaces[{index}].networkIP", ip,
                                    "Requested internal IP is outside the subnetwork CIDR range.")
            if ip in store.held(region, name):
                error = {"code": IN_USE, "message": f"IP '{ip}' is already being used by another resource."}
                return {"error": {"errors": [error]}, "httpErrorStatusCode": 400, "httpErrorMessage": "BAD REQUEST"}
    return None


def _user_of(store: Store, region: str, subnetwork: str, ip: str) -> list[str]:
    for (zone, _), instance in store.instances.items():
        for interface in instance.get("networkInterfaces") or []:
            if interface.get("networkIP") == ip and subnetwork_of(interface["subnetwork"], zone) == (region,
                                                                                                     subnetwork):
                return [instance["selfLink"]]
    return []


def _shown(store: Store, address: dict) -> dict:
    """The address as Compute answers it: its status and users as the instances hold it now."""
    region, subnetwork = last(address["region"]), last(address["subnetwork"])
    users = _user_of(store, region, subnetwork, address["address"])
    shown = {**address, "status": "IN_USE" if users else "RESERVED"}
    if users:
        shown["users"] = users
    return shown


@serves("compute.addresses.insert")
def insert_address(store: Store, params: dict, body: dict) -> dict:
    with store.lock:
        if (earlier := store.replay(params)) is not None:
            return earlier
        region, name = params["region"], body["name"]
        if (region, name) in store.addresses:
            raise ApiError(409, f"The resource 'projects/{store.project}/regions/{region}/addresses/{name}' "
                                "already exists", "alreadyExists")
        if body.get("addressType") != "INTERNAL" or not body.get("subnetwork"):
            raise ApiError(501, "the fake Compute API reserves internal addresses in a subnetwork only",
                           "notImplemented")
        subnet_region, subnet_name = subnetwork_of(body["subnetwork"], f"{region}-a")
        subnetwork = store.subnetworks.get((subnet_region, subnet_name))
        if subnetwork is None or subnet_region != region:
            raise not_found(f"projects/{store.project}/regions/{region}/subnetworks/{subnet_name}")
        ip = body.get("address") or store.free_address(subnetwork)
        if not usable(subnetwork, ip):
            raise invalid_field("resource.address", ip, "Requested internal IP is outside the subnetwork CIDR range.")
        target = url(store.project, "regions", region, "addresses", name)
        if ip in store.reserved(region, subnet_name):
            outcome = {"error": {"errors": [{"code": IN_USE,
                                             "message": f"IP '{ip}' is already being used by another resource."}]}}
            return store._operation(params, "insert", target, ("region", region), lambda: outcome)
        address = store.document.build("Address", **{
            **body, "id": str(next(store._ids)), "creationTimestamp": now(), "address": ip,
            "region": url(store.project, "regions", region), "subnetwork": subnetwork["selfLink"],
            "purpose": body.get("purpose", "GCE_ENDPOINT"), "networkTier": "PREMIUM", "selfLink": target})
        store.addresses[(region, name)] = address
        return store._operation(params, "insert", target, ("region", region), lambda: None)


@serves("compute.addresses.get")
def get_address(store: Store, params: dict, body: dict) -> dict:
    with store.lock:
        address = store.addresses.get((params["region"], params["address"]))
        if address is None:
            raise not_found(f"projects/{store.project}/regions/{params['region']}/addresses/{params['address']}")
        return _shown(store, address)


@serves("compute.addresses.delete")
def delete_address(store: Store, params: dict, body: dict) -> dict:
    with store.lock:
        if (earlier := store.replay(params)) is not None:
            return earlier
        region, name = params["region"], params["address"]
        address = store.addresses.get((region, name))
        if address is None:
            raise not_found(f"projects/{store.project}/regions/{region}/addresses/{name}")
        shown = _shown(store, address)
        if shown.get("users"):
            raise ApiError(400, f"The address resource '{address['selfLink']}' is already being used by "
                                f"'{shown['users'][0]}'", "resourceInUseByAnotherResource")
        del store.addresses[(region, name)]
        return store._operation(params, "delete", address["selfLink"], ("region", region), lambda: None)

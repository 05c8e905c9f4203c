"""The methods the fake serves, by discovery method id: each takes the store, the typed
parameters and the (validated) body and returns the response resource."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from tests.support.gce.instances import last, url
from tests.support.gce.store import Store, now, public
from tests.support.gce.validation import ApiError, full_match, invalid_field, not_found

Handler = Callable[[Store, dict, dict], dict]
HANDLERS: dict[str, Handler] = {}


def serves(method_id: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[method_id] = handler
        return handler
    return register


def _page(store: Store, schema: str, items: list[dict], params: dict, **extra) -> dict:
    """One page of a list: `maxResults` per page, the next page's token the index to start at."""
    size = params.get("maxResults", 500) or 500
    start = int(params.get("pageToken") or 0)
    answer = store.document.build(schema, items=items[start:start + size], id=f"projects/{store.project}", **extra)
    if start + size < len(items):
        answer["nextPageToken"] = str(start + size)
    return answer


# -- instances -------------------------------------------------------------------------------

@serves("compute.instances.insert")
def insert(store: Store, params: dict, body: dict) -> dict:
    template = params.get("sourceInstanceTemplate")
    return store.insert_instances(params, params["zone"], [body["name"]], template, body)


@serves("compute.instances.bulkInsert")
def bulk_insert(store: Store, params: dict, body: dict) -> dict:
    count, minimum = int(body.get("count", 0)), int(body.get("minCount", body.get("count", 0)))
    if count < 1 or minimum != count:
        raise invalid_field("resource.minCount", minimum, "The fake serves all-or-none bulk inserts only "
                                                          "(minCount = count >= 1).")
    pattern = body.get("namePattern", "")
    hashes = re.search(r"#+", pattern)
    if not hashes or body.get("perInstanceProperties"):
        raise invalid_field("resource.namePattern", pattern, "Must contain a run of '#' (the fake serves no "
                                                             "perInstanceProperties).")
    width = len(hashes.group())
    names = [pattern[:hashes.start()] + str(i).zfill(width) + pattern[hashes.end():] for i in range(1, count + 1)]
    name_pattern = store.document.schemas["Instance"]["properties"]["name"]["pattern"]
    for name in names:
        if not full_match(name_pattern, name):
            raise invalid_field("resource.namePattern", pattern, f"Instance name '{name}' must be a match of regex "
                                                                 f"'(?:{name_pattern})'")
    overrides = dict(body.get("instanceProperties") or {})
    return store.insert_instances(params, params["zone"], names, body.get("sourceInstanceTemplate"), overrides,
                                  kind="bulkInsert")


@serves("compute.instances.get")
def get_instance(store: Store, params: dict, body: dict) -> dict:
    with store.lock:
        return public(store.observe(params["zone"], params["instance"]))


@serves("compute.instances.list")
def list_instances(store: Store, params: dict, body: dict) -> dict:
    items = store.matching(params["zone"], params.get("filter", ""))
    return _page(store, "InstanceList", items, params,
                 selfLink=url(store.project, "zones", params["zone"], "instances"))


@serves("compute.instances.aggregatedList")
def aggregated_instances(store: Store, params: dict, body: dict) -> dict:
    if params.get("pageToken") or params.get("maxResults") is not None:
        raise invalid_field("pageToken", params.get("pageToken"), "The fake serves aggregated lists in one page.")
    items: dict[str, dict] = {}
    for instance in store.matching(None, params.get("filter", "")):
        items.setdefault(f"zones/{last(instance['zone'])}", {"instances": []})["instances"].append(instance)
    return store.document.build("InstanceAggregatedList", items=items, id=f"projects/{store.project}",
                                selfLink=url(store.project, "aggregated", "instances"))


@serves("compute.instances.delete")
def delete_instance(store: Store, params: dict, body: dict) -> dict:
    return store.delete_instance(params, params["zone"], params["instance"])


@serves("compute.instances.setLabels")
def set_labels(store: Store, params: dict, body: dict) -> dict:
    return store.set_labels(params, params["zone"], params["instance"], body)


for _verb in ("start", "suspend", "resume"):
    serves(f"compute.instances.{_verb}")(
        lambda store, params, body, verb=_verb: store.power(params, params["zone"], params["instance"], verb))


# -- operations --------------------------------------------------------------------------------

for _scope in ("zoneOperations", "regionOperations", "globalOperations"):
    for _verb in ("get", "wait"):
        serves(f"compute.{_scope}.{_verb}")(lambda store, params, body: dict(store.settle(params["operation"])))


# -- the network and the templates that tests set up --------------------------------------------

@serves("compute.instanceTemplates.insert")
def insert_template(store: Store, params: dict, body: dict) -> dict:
    with store.lock:
        if (earlier := store.replay(params)) is not None:
            return earlier
        name = body["name"]
        if name in store.templates:
            raise ApiError(409, f"The resource 'projects/{store.project}/global/instanceTemplates/{name}' "
                                "already exists", "alreadyExists")
        template = store.document.build("InstanceTemplate", **{
            **body, "id": str(next(store._ids)), "creationTimestamp": _now(),
            "selfLink": url(store.project, "global", "instanceTemplates", name)})
        store.templates[name] = template
        return store._operation(params, "insert", template["selfLink"], None, lambda: None)


@serves("compute.instanceTemplates.get")
def get_template(store: Store, params: dict, body: dict) -> dict:
    template = store.templates.get(params["instanceTemplate"])
    if template is None:
        raise not_found(f"projects/{store.project}/global/instanceTemplates/{params['instanceTemplate']}")
    return template


@serves("compute.networks.insert")
def insert_network(store: Store, params: dict, body: dict) -> dict:
    with store.lock:
        if (earlier := store.replay(params)) is not None:
            return earlier
        name = body["name"]
        network = store.document.build("Network", **{
            **body, "id": str(next(store._ids)), "creationTimestamp": _now(),
            "selfLink": url(store.project, "global", "networks", name)})
        store.networks[name] = network
        return store._operation(params, "insert", network["selfLink"], None, lambda: None)


@serves("compute.networks.get")
def get_network(store: Store, params: dict, body: dict) -> dict:
    if params["network"] not in store.networks:
        raise not_found(f"projects/{store.project}/global/networks/{params['network']}")
    return store.networks[params["network"]]


@serves("compute.subnetworks.insert")
def insert_subnetwork(store: Store, params: dict, body: dict) -> dict:
    with store.lock:
        if (earlier := store.replay(params)) is not None:
            return earlier
        region, name = params["region"], body["name"]
        if last(body.get("network", "")) not in store.networks:
            raise not_found(f"projects/{store.project}/global/networks/{last(body.get('network', ''))}")
        try:
            range_ = ipaddress.ip_network(body.get("ipCidrRange", ""))
        except ValueError:
            raise invalid_field("resource.ipCidrRange", body.get("ipCidrRange"), "Invalid IPCidrRange.") from None
        subnetwork = store.document.build("Subnetwork", **{
            **body, "id": str(next(store._ids)), "creationTimestamp": _now(),
            "region": url(store.project, "regions", region),
            "network": store.networks[last(body["network"])]["selfLink"],
            "ipCidrRange": str(range_), "gatewayAddress": str(next(range_.hosts())),
            "selfLink": url(store.project, "regions", region, "subnetworks", name)})
        store.subnetworks[(region, name)] = subnetwork
        store.regions.setdefault(region, [f"{region}-{letter}" for letter in "abc"])
        return store._operation(params, "insert", subnetwork["selfLink"], ("region", region), lambda: None)


@serves("compute.regions.get")
def get_region(store: Store, params: dict, body: dict) -> dict:
    region = params["region"]
    zones = store.regions.get(region)
    if zones is None:
        raise not_found(f"projects/{store.project}/regions/{region}")
    return store.document.build("Region", name=region, status="UP", id=str(abs(hash(region)) % 10**12),
                                zones=[url(store.project, "zones", zone) for zone in zones],
                                selfLink=url(store.project, "regions", region))


@serves("compute.subnetworks.get")
def get_subnetwork(store: Store, params: dict, body: dict) -> dict:
    found = store.subnetworks.get((params["region"], params["subnetwork"]))
    if found is None:
        raise not_found(f"projects/{store.project}/regions/{params['region']}/subnetworks/{params['subnetwork']}")
    return found


def _now() -> str:
    return now()


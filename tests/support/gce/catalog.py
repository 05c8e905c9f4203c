"""The fake's machine catalog: regions.list, machineTypes and acceleratorTypes aggregated
lists, as the catalog refresh (`deploy/cloud/catalogs/gcp.py`) reads them.

A test seeds it with `fake.seed_catalog(...)`; every zone of a known region without any
entry is listed with Compute's `NO_RESULTS_ON_PAGE` warning, as the real aggregated lists do.
"""

from __future__ import annotations

from tests.support.gce.handlers import serves
from tests.support.gce.instances import url
from tests.support.gce.store import Store


def _zones(store: Store) -> list[str]:
    zones = {zone for zones in store.regions.values() for zone in zones}
    for kind in ("machineTypes", "acceleratorTypes"):
        zones |= set(store.catalog[kind])
    return sorted(zones)


def _aggregated(store: Store, kind: str, schema: str, item_schema: str) -> dict:
    items = {}
    for zone in _zones(store):
        entries = store.catalog[kind].get(zone, [])
        if entries:
            items[f"zones/{zone}"] = {kind: [store.document.build(item_schema, **{
                **entry, "zone": zone, "selfLink": url(store.project, "zones", zone, kind, entry["name"])})
                for entry in entries]}
        else:
            items[f"zones/{zone}"] = {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "There are no results for "
                                                  f"scope 'zones/{zone}' on this page.",
                                                  "data": [{"key": "scope", "value": f"zones/{zone}"}]}}
    return store.document.build(schema, id=f"projects/{store.project}", items=items,
                                selfLink=url(store.project, "aggregated", kind))


@serves("compute.regions.list")
def list_regions(store: Store, params: dict, body: dict) -> dict:
    items = [store.document.build("Region", name=region, id=str(index + 1000),
                                  status=store.region_status.get(region, "UP"),
                                  zones=[url(store.project, "zones", zone) for zone in zones],
                                  selfLink=url(store.project, "regions", region))
             for index, (region, zones) in enumerate(sorted(store.regions.items()))]
    return store.document.build("RegionList", id=f"projects/{store.project}/regions", items=items,
                                selfLink=url(store.project, "regions"))


@serves("compute.machineTypes.aggregatedList")
def aggregated_machine_types(store: Store, params: dict, body: dict) -> dict:
    return _aggregated(store, "machineTypes", "MachineTypeAggregatedList", "MachineType")


@serves("compute.acceleratorTypes.aggregatedList")
def aggregated_accelerator_types(store: Store, params: dict, body: dict) -> dict:
    return _aggregated(store, "acceleratorTypes", "AcceleratorTypeAggregatedList", "AcceleratorType")

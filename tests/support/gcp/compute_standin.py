"""TEMPORARY stand-in for the gce engineer's fake Compute API (tests/support/gce/server.py),
with the contract's interface, so the simulator can be built before that lands. Deleted
once it does. Validates through the compute.v1 discovery document; serves instances
insert/get/list/aggregatedList/delete/attachDisk, zoneOperations get/wait, subnetworks
insert/get and disks insert/get; every operation is DONE at once.
"""

from __future__ import annotations

import ipaddress
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .discovery import ApiError, Route, load
from .http import JsonApiServer


class FakeCompute:
    def __init__(self, project: str) -> None:
        self.project = project
        self.requests: list[dict] = []
        self.instances: dict[str, dict] = {}
        self.subnetworks: dict[str, dict] = {}
        self.disks: dict[str, dict] = {}
        self._ids = itertools.count(1000)
        self._used: set[str] = set()
        self._lock = threading.Lock()
        self.server = JsonApiServer(load("compute.v1"), self._handle, self.requests)
        self.url = ""

    def client_options(self) -> dict:
        return {"api_endpoint": self.url}

    def power_off(self, name: str) -> None:
        with self._lock:
            self.instances[name]["status"] = "TERMINATED"

    def _link(self, path: str) -> str:
        return f"https://www.googleapis.com/compute/v1/projects/{self.project}/{path}"

    def _operation(self, kind: str, target: str, zone: str | None = None, region: str | None = None) -> dict:
        number = next(self._ids)
        where = {"zone": self._link(f"zones/{zone}")} if zone else {"region": self._link(f"regions/{region}")}
        return {"kind": "compute#operation", "id": str(number), "name": f"operation-{number}", "status": "DONE",
                "operationType": kind, "targetLink": target, "progress": 100, **where}

    def _handle(self, route: Route, body: dict) -> dict:
        action = route.method_id.removeprefix("compute.")
        p = route.path_params
        with self._lock:
            if action == "instances.insert":
                return self._insert(p["zone"], body)
            if action in ("instances.get", "instances.delete", "instances.attachDisk"):
                instance = self.instances.get(p["instance"])
                if instance is None:
                    raise ApiError(404, "NOT_FOUND", f"The resource '{p['instance']}' was not found")
                if action == "instances.get":
                    return instance
                if action == "instances.attachDisk":
                    instance["disks"].append({"source": body["source"], "boot": False,
                                              "deviceName": body.get("deviceName", body["source"].rsplit("/")[-1])})
                else:
                    del self.instances[p["instance"]]
                return self._operation(action.split(".")[1], instance["selfLink"], zone=p["zone"])
            if action == "instances.list":
                return {"items": [i for i in self.instances.values() if i["zone"].endswith(f"/{p['zone']}")]}
            if action == "instances.aggregatedList":
                zones: dict[str, dict] = {}
                for instance in self.instances.values():
                    zones.setdefault(f"zones/{instance['zone'].rsplit('/', 1)[1]}", {"instances": []})[
                        "instances"].append(instance)
                return {"items": zones}
            if action in ("zoneOperations.get", "zoneOperations.wait", "regionOperations.get"):
                return self._operation("insert", "", zone=p.get("zone"), region=p.get("region"))
            if action == "networks.insert":
                return {**self._operation("insert", self._link(f"global/networks/{body['name']}"), region="x"),
                        "region": None}
            if action == "globalOperations.get":
                return {**self._operation("insert", "", region="x"), "region": None}
            if action == "subnetworks.insert":
                subnetwork = {**body, "region": self._link(f"regions/{p['region']}"),
                              "selfLink": self._link(f"regions/{p['region']}/subnetworks/{body['name']}"),
                              "gatewayAddress": str(ipaddress.ip_network(body["ipCidrRange"])[1])}
                self.subnetworks[body["name"]] = subnetwork
                return self._operation("insert", subnetwork["selfLink"], region=p["region"])
            if action == "subnetworks.get":
                return self.subnetworks[p["subnetwork"]]
            if action == "disks.insert":
                disk = {**body, "zone": self._link(f"zones/{p['zone']}"),
                        "selfLink": self._link(f"zones/{p['zone']}/disks/{body['name']}")}
                self.disks[body["name"]] = disk
                return self._operation("insert", disk["selfLink"], zone=p["zone"])
            if action == "disks.get":
                return self.disks[p["disk"]]
        raise ApiError(501, "UNIMPLEMENTED", route.method_id)

    def _insert(self, zone: str, body: dict) -> dict:
        interface = body["networkInterfaces"][0]
        subnetwork = self.subnetworks[interface["subnetwork"].rsplit("/", 1)[1]]
        network = ipaddress.ip_network(subnetwork["ipCidrRange"])
        address = next(str(a) for a in list(network.hosts())[1:] if str(a) not in self._used)
        self._used.add(address)
        instance = {**body, "id": str(next(self._ids)), "status": "RUNNING", "zone": self._link(f"zones/{zone}"),
                    "selfLink": self._link(f"zones/{zone}/instances/{body['name']}"),
                    "networkInterfaces": [{**interface, "networkIP": address, "subnetwork": subnetwork["selfLink"]}],
                    "disks": [*body.get("disks", [])]}
        self.instances[body["name"]] = instance
        return self._operation("insert", instance["selfLink"], zone=zone)


@contextmanager
def running_fake_compute(project: str = "oceanlab-prod", *, discovery: Path | None = None) -> Iterator[FakeCompute]:
    fake = FakeCompute(project)
    with fake.server.running() as url:
        fake.url = url
        yield fake

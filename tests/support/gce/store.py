"""What the fake Compute API holds and how each served method changes it.

Operations: a mutation is applied when asked (an instance exists, PROVISIONING, as soon
as its insert is accepted) and its operation is RUNNING until someone looks at it
(`zoneOperations.get/wait`, or a read of the instance): then it is DONE and the instance
RUNNING. No clock decides anything. A repeated `requestId` answers with the first
operation and changes nothing, as Compute does.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tests.support.gce import capacity, filters, instances
from tests.support.gce.discovery import Document
from tests.support.gce.instances import last, url
from tests.support.gce.validation import ApiError, Validator, invalid_field, not_found

Listener = Callable[[str, dict], None]  # (event: running|terminated|deleted, instance)


_last_stamp = [datetime.min.replace(tzinfo=UTC)]
_stamp_lock = threading.Lock()


def now() -> str:
    """Compute's RFC 3339 time, a millisecond at least after the one before: a stop and the
    start after it are never dated alike, however fast a test asks for them."""
    with _stamp_lock:
        stamp = _last_stamp[0] = max(datetime.now(UTC), _last_stamp[0] + timedelta(milliseconds=1))
    return stamp.isoformat(timespec="milliseconds")


class Store:
    # Checks of an insert's built instances before they are placed (store, zone, instances);
    # tests/support/gcp/compute_disks.py adds its attached-disk check.
    insert_checks: list[Callable[[Store, str, list[dict]], None]] = []

    def __init__(self, project: str, document: Document) -> None:
        self.project, self.document = project, document
        self.validator = Validator(document)
        self.lock = threading.RLock()
        self.networks: dict[str, dict] = {}
        self.subnetworks: dict[tuple[str, str], dict] = {}  # (region, name)
        self.templates: dict[str, dict] = {}
        self.instances: dict[tuple[str, str], dict] = {}  # (zone, name)
        self.operations: dict[str, dict] = {}  # name: operation
        self._finish: dict[str, Callable[[], None]] = {}  # operation name: what completes it
        self._by_request_id: dict[str, str] = {}
        self._addresses: dict[tuple[str, str], set[str]] = {}  # (region, subnetwork): instances' addresses
        self.addresses: dict[tuple[str, str], dict] = {}  # (region, name): static addresses (addresses.py)
        self._ids = itertools.count(4_000_000_000_000_000_001)
        self.refusals: list[capacity.Refusal] = []
        self.refused: list[tuple[str, str, str, str]] = []  # (zone, machine type, provisioning, reason)
        self.listeners: list[Listener] = []
        self.catalog: dict[str, dict[str, list[dict]]] = {"machineTypes": {}, "acceleratorTypes": {}}  # by zone
        self.region_status: dict[str, str] = {}  # UP unless set
        # {region: its zones}; a region a subnetwork is made in gets -a, -b, -c unless set here.
        self.regions: dict[str, list[str]] = {"us-central1": ["us-central1-a", "us-central1-b", "us-central1-c",
                                                              "us-central1-f"],
                                              "us-east1": ["us-east1-b", "us-east1-c", "us-east1-d"]}

    # -- operations ---------------------------------------------------------------------------

    def _operation(self, params: dict, kind: str, target: str, scope: tuple[str, str] | None,
                   finish: Callable[[], dict | None]) -> dict:
        request_id = params.get("requestId")
        if (earlier := self.replay(params)) is not None:
            return earlier
        number = next(self._ids)
        name = f"operation-{number}-{hashlib.sha1(str(number).encode()).hexdigest()[:8]}"
        operation = self.document.build(
            "Operation", id=str(number), name=name, operationType=kind, targetLink=target, status="RUNNING",
            progress=0, insertTime=now(), startTime=now(), user="fake@oceanlab.iam.gserviceaccount.com")
        where = ("global",) if scope is None else (f"{scope[0]}s", scope[1])
        if scope is not None:
            operation[scope[0]] = url(self.project, *where)
        operation["selfLink"] = url(self.project, *where, "operations", name)
        if request_id is not None:
            operation["clientOperationId"] = request_id
            self._by_request_id[request_id] = name
        self.operations[name] = operation

        def complete() -> None:
            outcome = finish() or {}
            operation.update(status="DONE", progress=100, endTime=now(), **outcome)

        self._finish[name] = complete
        return operation

    def replay(self, params: dict) -> dict | None:
        """The first operation of a repeated requestId (None for a new one)."""
        request_id = params.get("requestId")
        if request_id is None:
            return None
        if not _is_uuid(request_id):
            raise invalid_field("requestId", request_id, "The request ID must be a valid UUID, not the zero UUID.")
        name = self._by_request_id.get(request_id)
        return self.operations[name] if name else None

    def settle(self, name: str) -> dict:
        with self.lock:
            if name not in self.operations:
                raise not_found(f"projects/{self.project}/operations/{name}")
            if (complete := self._finish.pop(name, None)) is not None:
                complete()
            return self.operations[name]

    def settle_all(self) -> None:
        with self.lock:
            for name in list(self._finish):
                self.settle(name)

    # -- instances ----------------------------------------------------------------------------

    def insert_instances(self, params: dict, zone: str, names: list[str], template_ref: str | None,
                         overrides: dict, kind: str = "insert") -> dict:
        with self.lock:
            properties = {}
            if template_ref:
                template = self.templates.get(instances.template_name(template_ref))
                if template is None:
                    raise not_found(f"projects/{self.project}/global/instanceTemplates/{last(template_ref)}")
                properties = template["properties"]
            if (earlier := self.replay(params)) is not None:
                return earlier
            for name in names:
                if (zone, name) in self.instances:
                    raise ApiError(409, f"The resource 'projects/{self.project}/zones/{zone}/instances/{name}' "
                                        "already exists", "alreadyExists")
            built = [instances.build(self.project, zone, name, properties, overrides) for name in names]
            for check in self.insert_checks:
                check(self, zone, built)
            first = built[0]
            machine_type = last(first["machineType"])
            provisioning = first.get("scheduling", {}).get("provisioningModel", "STANDARD")
            refusal = next((r for r in self.refusals if r.matches(zone, machine_type, provisioning)), None)
            target = url(self.project, "zones", zone, "instances", names[0])
            if refusal is not None:
                self.refused.append((zone, machine_type, provisioning, refusal.reason))
                outcome = capacity.operation_error(refusal.reason, self.project, zone, machine_type, provisioning)
                return self._operation(params, kind, target, ("zone", zone), lambda: outcome)
            from tests.support.gce.addresses import check_requested  # it serves addresses.*: imports the store

            if (taken := check_requested(self, zone, built)) is not None:
                return self._operation(params, kind, target, ("zone", zone), lambda: taken)
            made = [self._place(zone, instance) for instance in built]

            def finish() -> None:
                for instance in made:
                    self._advance(instance, to="RUNNING")

            operation = self._operation(params, kind, target, ("zone", zone), finish)
            for instance in made:
                instance["_insert"] = operation["name"]
            operation["targetId"] = made[0]["id"]
            return operation

    def _place(self, zone: str, instance: dict) -> dict:
        interfaces = instance.get("networkInterfaces") or []
        if not interfaces:
            raise ApiError(400, "Invalid value for field 'resource.networkInterfaces': ''. At least one network "
                                "interface is required.", "invalid")
        for index, interface in enumerate(interfaces):
            region, name = instances.subnetwork_of(interface.get("subnetwork", "default"), zone)
            subnetwork = self.subnetworks.get((region, name))
            if subnetwork is None:
                raise not_found(f"projects/{self.project}/regions/{region}/subnetworks/{name}")
            if region != capacity.region_of(zone):
                raise ApiError(400, f"Invalid value for field 'resource.networkInterfaces[{index}].subnetwork': "
                                    f"'{interface['subnetwork']}'. Subnetwork must be in the same region as the "
                                    "instance.", "invalid")
            interface.update(kind="compute#networkInterface", name=f"nic{index}", network=subnetwork["network"],
                             subnetwork=subnetwork["selfLink"], stackType="IPV4_ONLY",
                             networkIP=self._address(subnetwork, interface.get("networkIP")),
                             fingerprint=_fingerprint(interface))
        number = next(self._ids)
        instance.update(
            id=str(number), creationTimestamp=now(), status="PROVISIONING", zone=url(self.project, "zones", zone),
            selfLink=url(self.project, "zones", zone, "instances", instance["name"]),
            cpuPlatform="Unknown CPU Platform", startRestricted=False, deletionProtection=False,
            labelFingerprint=_fingerprint(instance.get("labels", {})), fingerprint=_fingerprint(number),
        )
        instance.setdefault("canIpForward", False)
        if "metadata" in instance:
            instance["metadata"] = {"kind": "compute#metadata", "items": instance["metadata"].get("items", []),
                                    "fingerprint": _fingerprint(instance["metadata"].get("items", []))}
        if "tags" in instance:
            items = instance["tags"].get("items", [])
            instance["tags"] = {"items": items, "fingerprint": _fingerprint(items)}
        instance = self.document.build("Instance", **instance)
        self.validator.value("Instance", {"$ref": "Instance"}, instance, "instance", None)
        self.instances[(zone, instance["name"])] = instance
        return instance

    def _address(self, subnetwork: dict, asked: str | None = None) -> str:
        """`asked` (checked free by addresses.check_requested) or a free one, now the instance's."""
        ip = asked or self.free_address(subnetwork)
        self._addresses.setdefault((last(subnetwork["region"]), subnetwork["name"]), set()).add(ip)
        return ip

    def free_address(self, subnetwork: dict) -> str:
        """An address no instance holds and no static address reserves."""
        network = ipaddress.ip_network(subnetwork["ipCidrRange"])
        region, name = last(subnetwork["region"]), subnetwork["name"]
        taken = self.held(region, name) | self.reserved(region, name)
        # Compute keeps the first two and the last two addresses of a range.
        for host in itertools.islice(network.hosts(), 1, network.num_addresses - 4):
            if str(host) not in taken:
                return str(host)
        raise ApiError(400, f"IP space of '{subnetwork['selfLink']}' is exhausted.", "ipSpaceExhausted")

    def held(self, region: str, subnetwork: str) -> set[str]:
        return set(self._addresses.get((region, subnetwork), ()))

    def reserved(self, region: str, subnetwork: str) -> set[str]:
        return {a["address"] for a in self.addresses.values()
                if last(a["region"]) == region and last(a["subnetwork"]) == subnetwork}

    def _advance(self, instance: dict, to: str | None = None) -> None:
        """One lifecycle step (or straight `to` a status); listeners hear of RUNNING."""
        steps = {"PROVISIONING": "STAGING", "STAGING": "RUNNING"}  # a start or resume is STAGING too
        before = instance["status"]
        if before not in steps:
            return
        instance["status"] = to or steps[before]
        if instance["status"] == "RUNNING":
            instance["lastStartTimestamp"] = now()
            self._notify("running", instance)

    def observe(self, zone: str, name: str) -> dict:
        """An instance as a read sees it (a read moves a new instance on by one step)."""
        instance = self.instances.get((zone, name))
        if instance is None:
            raise not_found(f"projects/{self.project}/zones/{zone}/instances/{name}")
        self._advance(instance)
        return instance

    def delete_instance(self, params: dict, zone: str, name: str) -> dict:
        with self.lock:
            if (earlier := self.replay(params)) is not None:
                return earlier
            if (zone, name) not in self.instances:
                raise not_found(f"projects/{self.project}/zones/{zone}/instances/{name}")

            # Gone at once (no clock to be STOPPING for a while by): its operation is DONE when looked at.
            operation = self._operation(params, "delete", url(self.project, "zones", zone, "instances", name),
                                        ("zone", zone), lambda: None)
            instance = self.instances.pop((zone, name))
            self._release(instance)
            self._notify("deleted", instance)
            return operation

    def _release(self, instance: dict) -> None:
        for interface in instance.get("networkInterfaces", []):
            region, name = instances.subnetwork_of(interface["subnetwork"], last(instance["zone"]))
            self._addresses.get((region, name), set()).discard(interface.get("networkIP"))

    def power_off(self, name: str, zone: str | None = None) -> dict:
        """A shutdown from inside the guest: the instance stays, TERMINATED (a stopped VM)."""
        with self.lock:
            found = [(z, n) for (z, n) in self.instances if n == name and zone in (None, z)]
            if len(found) != 1:
                raise KeyError(f"{len(found)} instances named {name!r}")
            instance = self.instances[found[0]]
            instance["status"] = "TERMINATED"
            instance["lastStopTimestamp"] = now()
            self._notify("terminated", instance)
            return instance

    # Stop/start and suspend/resume, as the console or gcloud asks them: from the status on the
    # left; a started or resumed instance is STAGING, then RUNNING at the next read, which
    # dates `lastStartTimestamp` as a first start does.
    _POWER = {"start": (("TERMINATED", "STOPPED"), "STAGING", None),
              "resume": (("SUSPENDED",), "STAGING", None),
              "suspend": (("RUNNING",), "SUSPENDED", "lastSuspendedTimestamp")}

    def power(self, params: dict, zone: str, name: str, verb: str) -> dict:
        with self.lock:
            if (earlier := self.replay(params)) is not None:
                return earlier
            instance = self.instances.get((zone, name))
            if instance is None:
                raise not_found(f"projects/{self.project}/zones/{zone}/instances/{name}")
            allowed, status, stamp = self._POWER[verb]
            if instance["status"] not in allowed:
                raise ApiError(400, f"The resource '{instance['selfLink']}' is not ready: it is "
                                    f"{instance['status']}, {verb} needs {' or '.join(allowed)}.", "resourceNotReady")
            instance["status"] = status
            if stamp:
                instance[stamp] = now()
                self._notify("terminated", instance)
            return self._operation(params, verb, instance["selfLink"], ("zone", zone), lambda: None)

    def preempt(self, name: str, zone: str | None = None) -> None:
        with self.lock:
            found = [(z, n) for (z, n) in self.instances if n == name and zone in (None, z)]
            if len(found) != 1:
                raise KeyError(f"{len(found)} instances named {name!r}")
            instance = self.instances[found[0]]
            scheduling = instance.get("scheduling", {})
            if scheduling.get("provisioningModel") != "SPOT" and not scheduling.get("preemptible"):
                raise ValueError(f"{name} is not a Spot VM: Compute does not preempt it")
            if scheduling.get("instanceTerminationAction") == "DELETE":
                self._release(self.instances.pop(found[0]))
                self._notify("deleted", instance)
            else:
                self.power_off(name, found[0][0])

    def set_labels(self, params: dict, zone: str, name: str, body: dict) -> dict:
        with self.lock:
            instance = self.observe(zone, name)
            if body.get("labelFingerprint") != instance["labelFingerprint"]:
                raise ApiError(412, "Labels fingerprint either invalid or resource labels have changed",
                               "conditionNotMet")
            labels = body.get("labels", {})
            instances.check_labels(labels, "labels")

            def finish() -> None:
                instance.update(labels=labels, labelFingerprint=_fingerprint(labels))

            return self._operation(params, "setLabels", instance["selfLink"], ("zone", zone), finish)

    def matching(self, zone: str | None, expression: str) -> list[dict]:
        keep = filters.parse(expression or "")
        with self.lock:
            found = [self.observe(z, n) for (z, n) in sorted(self.instances) if zone in (None, z)]
            return [public(i) for i in found if keep(i)]

    def _notify(self, event: str, instance: dict) -> None:
        for listener in list(self.listeners):
            listener(event, public(instance))


def public(resource: dict) -> dict:
    """A resource without the store's own bookkeeping (keys starting with `_`)."""
    return {key: value for key, value in resource.items() if not key.startswith("_")}


def _fingerprint(value) -> str:
    import base64

    return base64.b64encode(hashlib.sha256(repr(value).encode()).digest()[:8]).decode()


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        return uuid.UUID(value) != uuid.UUID(int=0) and len(value) == 36
    except ValueError:
        return False

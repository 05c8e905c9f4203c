"""Machines on Google Compute Engine, through google-cloud-compute (the `[gcp]` extra),
imported when first used.

A machine is an instance launched from the profile's rendered instance template; its id is
its name (the layer's names are unique in the platform, whatever the zone). Tags become
labels at creation (`gcp_placement.labels`: lower-case, GCE's characters only), so `list`
finds a platform's machines by label across zones after any restart. Where a launch is
tried and what each try asks for: `gcp_placement.py`. Every wait for an operation is
`zoneOperations.wait` on this layer's own clients: the generated clients' `.result()`
polls through an operations client that ignores `client_options`.

A batch is one `instances.bulkInsert` with `minCount = count`: all of it in one zone and
provisioning model, or none (the benchmark `tests/bench/bench_cluster_gcp.py` compares it
with concurrent single inserts).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

from deploy.cloud import gcp_placement as placement
from deploy.cloud.deadman import with_deadman
from deploy.cloud.google_clients import ENDPOINTS_VARIABLE, client_arguments
from deploy.cloud.machines import PENDING, RUNNING, STOPPED, STOPPING, Machine, MachinesError, MachineSpec

# GCE's instance statuses in our words. GCE's TERMINATED is a stopped instance that still
# exists (a guest power-off, e.g. the dead-man switch's): the reaper deletes it.
_STATES = {
    "PROVISIONING": PENDING, "STAGING": PENDING, "RUNNING": RUNNING, "STOPPING": STOPPING,
    "SUSPENDING": STOPPING, "SUSPENDED": STOPPED, "TERMINATED": STOPPED, "REPAIRING": PENDING,
    "PENDING_STOP": STOPPING, "DEPROVISIONING": STOPPING, "STOPPED": STOPPED, "PENDING": PENDING,
}
# When a stopped instance stopped, by its status: what metering charges it until. A deleted
# instance has no such time (it is STOPPING, then gone): its interval ends when it is seen gone.
_ENDED_AT = {"TERMINATED": "lastStopTimestamp", "STOPPED": "lastStopTimestamp",
             "SUSPENDED": "lastSuspendedTimestamp"}
_TRANSIENT = (429, 500, 502, 503, 504)
_ATTEMPTS = 3
_WAITS = 15  # zoneOperations.wait answers within 2 minutes, DONE or not
_NAMES_PER_FILTER = 50
_PARALLEL = 16
_NAME_LENGTH = 63


def on_vm_arguments() -> dict:
    """`credentials` and `client_options` for code on a platform VM (the gateway, the reaper):
    the instance's account from the metadata server. A test that runs it off any VM names the
    fakes' endpoints in GRATICULE_GOOGLE_ENDPOINTS and calls them anonymously."""
    return client_arguments("compute", on_vm=ENDPOINTS_VARIABLE not in os.environ)


class GCPMachines:
    def __init__(self, project: str, zones: Sequence[str] | str = (), *, zone: str | None = None,
                 regions: Sequence[str] = (), subnetworks: Mapping[str, str] | None = None,
                 client_options: Mapping | None = None, credentials: Any = None) -> None:
        """`zones`, in the order tried (several regions' zones may follow each other); or
        `regions`, whose zones (UP) Compute is asked for once. `subnetworks`: {region: the
        region's private subnetwork}, for zones outside the template's region."""
        self.project = project
        given = [zones] if isinstance(zones, str) else list(zones)
        self._zones: list[str] | None = given + ([zone] if zone else []) or None
        self.regions = list(regions)
        self.subnetworks = dict(subnetworks or {})
        self.client_options = dict(client_options or {})
        self.credentials = credentials
        self._clients: dict[str, Any] = {}
        self._templates: dict[str, dict] = {}
        self._templates_lock = threading.Lock()  # concurrent launches ask for a template once

    # -- the clients and their calls ---------------------------------------------------------------

    def client(self, kind: str):
        if kind not in self._clients:
            compute = _compute()
            self._clients[kind] = getattr(compute, kind)(credentials=self.credentials, transport="rest",
                                                         client_options=self.client_options or None)
        return self._clients[kind]

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """One API call, tried again after throttling or Google's own hiccups (a request that
        carries a requestId is the same request each time)."""
        from google.api_core import exceptions
        from google.auth.exceptions import GoogleAuthError

        for attempt in range(_ATTEMPTS):
            try:
                return call()
            except exceptions.GoogleAPICallError as error:
                if error.code not in _TRANSIENT or attempt == _ATTEMPTS - 1:
                    raise
            except (exceptions.RetryError, GoogleAuthError) as error:  # e.g. no token from the metadata server
                raise MachinesError(f"gcp compute {what} failed: {error}") from None
            except OSError as error:  # requests' ConnectionError is one
                if attempt == _ATTEMPTS - 1:
                    raise MachinesError(f"gcp compute {what} failed: {error}") from None
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def _checked(self, what: str, call: Callable[[], Any]) -> Any:
        from google.api_core import exceptions

        try:
            return self._call(what, call)
        except exceptions.GoogleAPICallError as error:
            raise MachinesError(f"gcp compute {what} failed: {error}") from None

    def _wait(self, zone: str, operation, what: str) -> dict:
        """The operation DONE, as JSON (its `error`, if any, for the caller to read)."""
        name = getattr(operation, "name", operation)
        for _ in range(_WAITS):
            done = self._checked(f"{what} (waiting)", lambda: self.client("ZoneOperationsClient").wait(
                project=self.project, zone=zone, operation=name))
            answer = _json(done)
            if answer.get("status") == "DONE":
                return answer
        raise MachinesError(f"gcp compute {what}: operation {name} not done after {_WAITS} waits")

    # -- where ------------------------------------------------------------------------------------

    def zones(self) -> list[str]:
        if self._zones is None:
            found: list[str] = []
            for region in self.regions:
                answer = _json(self._checked(f"regions.get {region}", lambda r=region: self.client(
                    "RegionsClient").get(project=self.project, region=r)))
                found += sorted(z.rsplit("/", 1)[-1] for z in answer.get("zones", []))
            if not found:
                raise MachinesError(f"gcp compute: no zones to launch in (zones {self._zones}, regions {self.regions})")
            self._zones = found
        return list(self._zones)

    def in_zones(self, zones: Sequence[str]) -> GCPMachines:
        """The same project and clients, launching only in `zones` (a machine pinned to its
        disk's zone)."""
        pinned = GCPMachines(self.project, zones, subnetworks=self.subnetworks, client_options=self.client_options,
                             credentials=self.credentials)
        pinned._clients, pinned._templates = self._clients, self._templates
        return pinned

    def template(self, reference: str) -> dict:
        """The template's properties (JSON), asked for once per template."""
        with self._templates_lock:
            if reference not in self._templates:
                name = reference.rstrip("/").rsplit("/", 1)[-1]
                answer = self._checked(f"instanceTemplates.get {name}", lambda: self.client(
                    "InstanceTemplatesClient").get(project=self.project, instance_template=name))
                self._templates[reference] = _json(answer).get("properties", {})
            return self._templates[reference]

    # -- launching --------------------------------------------------------------------------------

    def launch(self, spec: MachineSpec) -> Machine:
        if spec.count != 1:
            raise ValueError(f"launch starts one machine; {spec.name} asks for {spec.count}: use launch_batch")
        return self._launch(spec, batch=False)[0]

    def launch_batch(self, spec: MachineSpec) -> list[Machine]:
        if spec.count < 1:
            raise ValueError(f"{spec.name}: count must be at least 1, not {spec.count}")
        return self._launch(spec, batch=True)

    def _launch(self, spec: MachineSpec, batch: bool) -> list[Machine]:
        if batch:  # `<name>-0001`...: names stay within GCE's 63 characters
            spec = replace(spec, name=spec.name[:_NAME_LENGTH - 5].rstrip("-"))
        names = [f"{spec.name}-{i:04d}" for i in range(1, spec.count + 1)] if batch else [spec.name]
        earlier = [m for m in self.describe(names).values() if m.alive]
        if len(earlier) == len(names):
            return sorted(earlier, key=lambda m: m.id)  # launched before: a retried launch starts nothing new
        properties = self.template(spec.template)
        script = with_deadman(spec.user_data, spec.deadman) if spec.deadman else spec.user_data
        refusals, skips = [], placement.Skips()
        for attempt in placement.attempts(spec, self.zones(), self.subnetworks):
            if skips.skips(attempt):
                continue
            try:
                if batch:
                    return self._bulk_insert(spec, attempt, properties, script, names)
                return [self._insert(spec, attempt, properties, script)]
            except placement.Refused as refused:
                refusals.append(f"{attempt.describe()} ({refused.code})")
                if refused.quota:
                    skips.add(attempt, refused)
        raise MachinesError(
            f"gcp compute refused {spec.count} x {spec.name} from instance template {spec.template} for lack of "
            f"capacity or quota; tried {', '.join(refusals) or 'nothing (no zones)'}"
        )

    def _insert(self, spec: MachineSpec, attempt: placement.Attempt, properties: dict, script: str) -> Machine:
        compute = _compute()
        body = placement.instance_body(spec, attempt, properties, script, name=spec.name)
        request = compute.InsertInstanceRequest(
            project=self.project, zone=attempt.zone, source_instance_template=spec.template,
            request_id=attempt.request_id, instance_resource=compute.Instance.from_json(json.dumps(body)))
        self._settle(attempt, f"instances.insert {spec.name} in {attempt.zone}",
                     lambda: self.client("InstancesClient").insert(request=request))
        machine = self._get(attempt.zone, spec.name)
        if machine.state == STOPPED:  # the name was taken by a stopped instance, not launched now
            raise MachinesError(f"gcp compute: {spec.name} exists stopped in {attempt.zone}; it must be deleted "
                                "(the reaper does) before a machine of that name can run")
        return machine

    def _bulk_insert(self, spec: MachineSpec, attempt: placement.Attempt, properties: dict, script: str,
                     names: list[str]) -> list[Machine]:
        compute = _compute()
        body = {
            "count": spec.count, "minCount": spec.count, "namePattern": f"{spec.name}-####",
            "sourceInstanceTemplate": spec.template,
            "instanceProperties": placement.instance_body(spec, attempt, properties, script),
        }
        request = compute.BulkInsertInstanceRequest(
            project=self.project, zone=attempt.zone, request_id=attempt.request_id,
            bulk_insert_instance_resource_resource=compute.BulkInsertInstanceResource.from_json(json.dumps(body)))
        self._settle(attempt, f"instances.bulkInsert {spec.count} x {spec.name} in {attempt.zone}",
                     lambda: self.client("InstancesClient").bulk_insert(request=request))
        found = self.describe(names)
        missing = [name for name in names if name not in found]
        if missing:
            raise MachinesError(f"gcp compute bulkInsert in {attempt.zone}: {', '.join(missing)} missing after it")
        return [found[name] for name in names]

    def _settle(self, attempt: placement.Attempt, what: str, insert: Callable[[], Any]) -> None:
        """Send an insert and wait for it; a capacity or quota error is `Refused`."""
        from google.api_core import exceptions

        try:
            operation = self._call(what, insert)
        except exceptions.Conflict:
            return  # the name exists in this zone: an earlier try of the same request took effect
        except exceptions.GoogleAPICallError as error:
            if (refused := placement.refusal(_api_errors(error))) is not None:
                raise refused from None
            raise MachinesError(f"gcp compute {what} failed: {error}") from None
        done = self._wait(attempt.zone, operation, what)
        errors = (done.get("error") or {}).get("errors") or []
        if errors:
            if (refused := placement.refusal(errors)) is not None:
                raise refused
            if all(e.get("code") == "RESOURCE_ALREADY_EXISTS" for e in errors):
                return
            raise MachinesError(f"gcp compute {what} failed: "
                                + "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors))

    def instance(self, zone: str, name: str) -> dict | None:
        """The instance as Compute has it (its JSON: numeric `id`, `labels`...); None: no such instance."""
        from google.api_core import exceptions

        what = f"instances.get {name} in {zone}"
        try:
            return _json(self._call(what, lambda: self.client("InstancesClient").get(
                project=self.project, zone=zone, instance=name)))
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as error:
            raise MachinesError(f"gcp compute {what} failed: {error}") from None

    def _get(self, zone: str, name: str) -> Machine:
        answer = self._checked(f"instances.get {name}", lambda: self.client("InstancesClient").get(
            project=self.project, zone=zone, instance=name))
        return _machine(_json(answer))

    # -- the rest of the protocol -------------------------------------------------------------------

    def describe(self, ids: Sequence[str]) -> dict[str, Machine]:
        """One aggregatedList per 50 names, across every zone (a name says nothing of its zone)."""
        ids, found = [i for i in dict.fromkeys(ids) if i], {}
        for start in range(0, len(ids), _NAMES_PER_FILTER):
            chunk = ids[start:start + _NAMES_PER_FILTER]
            condition = " OR ".join(f'(name = "{name}")' for name in chunk)
            found |= {m.id: m for m in self._aggregated(condition)}
        return found

    def list(self, tags: Mapping[str, str]) -> list[Machine]:
        """Every instance with these labels, stopped (TERMINATED) ones included: they still exist."""
        condition = " AND ".join(f'(labels.{key} = "{value}")' for key, value in placement.labels(tags).items())
        return self._aggregated(condition)

    def _aggregated(self, condition: str) -> list[Machine]:
        compute = _compute()
        request = compute.AggregatedListInstancesRequest(project=self.project, filter=condition)
        pages = self._checked("instances.aggregatedList", lambda: self.client("InstancesClient").aggregated_list(
            request=request))
        machines = []
        for _, scoped in pages:
            machines += [_machine(_json(instance)) for instance in scoped.instances]
        return machines

    def terminate(self, ids: Sequence[str]) -> None:
        """Delete each instance (a stopped one too); gone ones are skipped. The deletes are sent,
        not waited for (Compute takes tens of seconds to finish one; the instance is STOPPING,
        not alive, from the answer on), as EC2's TerminateInstances answers at once."""
        found = self.describe(ids)
        with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
            list(pool.map(lambda machine: self._delete(machine.zone or "", machine.id), found.values()))

    def _delete(self, zone: str, name: str) -> None:
        from google.api_core import exceptions

        what = f"instances.delete {name} in {zone}"
        try:
            self._call(what, lambda: self.client("InstancesClient").delete(
                project=self.project, zone=zone, instance=name))
        except exceptions.NotFound:
            return
        except exceptions.GoogleAPICallError as error:
            raise MachinesError(f"gcp compute {what} failed: {error}") from None


def _compute():
    try:
        from google.cloud import compute_v1
    except ImportError:
        raise MachinesError("google-cloud-compute is not installed: pip install 'graticule[gcp]'") from None
    return compute_v1


def _json(message) -> dict:
    """A compute_v1 message (or its extended operation) as the API's JSON."""
    raw = getattr(message, "_extended_operation", message)
    return type(raw).to_dict(raw, preserving_proto_field_name=False, use_integers_for_enums=False)


def _api_errors(error) -> list[dict]:
    return [e if isinstance(e, dict) else {"code": getattr(e, "code", ""), "message": getattr(e, "message", "")}
            for e in (getattr(error, "errors", None) or [])]


def _machine(instance: dict) -> Machine:
    interfaces = instance.get("networkInterfaces") or []
    status = instance.get("status", "")
    state = _STATES.get(status, PENDING)
    return Machine(
        id=instance["name"],
        state=state,
        private_ip=(interfaces[0].get("networkIP") or None) if interfaces else None,
        tags=dict(instance.get("labels") or {}),
        launched_at=_timestamp(instance.get("creationTimestamp")),
        zone=str(instance.get("zone", "")).rsplit("/", 1)[-1] or None,
        spot=(instance.get("scheduling") or {}).get("provisioningModel") == placement.SPOT,
        ended_at=_timestamp(instance.get(_ENDED_AT.get(status, ""))) if state == STOPPED else None,
        **_restart(instance, state),
    )


def _restart(instance: dict, state: str) -> dict[str, datetime]:
    """`paused_at`/`resumed_at` of an instance that runs again after a stop or a suspension
    ({} otherwise): started (`lastStartTimestamp`) after it last stopped or was suspended."""
    started = _timestamp(instance.get("lastStartTimestamp"))
    paused = max((stamp for field in ("lastStopTimestamp", "lastSuspendedTimestamp")
                  if (stamp := _timestamp(instance.get(field))) is not None), default=None)
    if state == STOPPED or started is None or paused is None or paused >= started:
        return {}
    return {"paused_at": paused, "resumed_at": started}


def _timestamp(value: str | None) -> datetime | None:
    """Compute's RFC 3339 timestamps (with their UTC offset)."""
    return datetime.fromisoformat(value) if value else None

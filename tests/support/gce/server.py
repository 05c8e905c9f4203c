"""The fake Compute API on 127.0.0.1: `running_fake_compute()` yields a `FakeCompute`.

Every request is routed by the discovery document, its parameters and body validated
against it (`validation.py`) before anything is served; a method the document knows but
the fake does not serve is answered 501, never guessed at. Each response is checked
against its schema in the same document before it is sent, so the fake cannot answer
with a field Google's API does not have.

The client side:
    compute_v1.InstancesClient(credentials=AnonymousCredentials(), transport="rest",
                               client_options=fake.client_options())
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.support.gce import addresses, capacity, catalog  # noqa: F401  (addresses, catalog: their methods join HANDLERS)
from tests.support.gce.discovery import Document, compute_document
from tests.support.gce.handlers import HANDLERS
from tests.support.gce.store import Listener, Store, public
from tests.support.gce.validation import ApiError
from tests.support.http_server import BurstHTTPServer

TALLY_PATH = "/_fake/requests"  # GET: {method id: requests received}


class Hold:
    """Requests held back (see `FakeCompute.hold`)."""

    def __init__(self) -> None:
        self._released = threading.Event()
        self._changed = threading.Condition()
        self.waiting = 0
        self.most = 0  # the most waiting at once

    def wait(self) -> None:
        with self._changed:
            self.waiting += 1
            self.most = max(self.most, self.waiting)
            self._changed.notify_all()
        self._released.wait(timeout=300)
        with self._changed:
            self.waiting -= 1

    def reached(self, count: int, timeout: float = 120) -> bool:
        """Whether `count` requests were held at once (waits for it, up to `timeout`)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.most >= count, timeout=timeout)

    def release(self) -> None:
        self._released.set()


class FakeCompute:
    def __init__(self, project: str, document: Document) -> None:
        self.project, self.document = project, document
        self.store = Store(project, document)
        self.requests: list[dict] = []  # method, path, query, body, id (the discovery method id) of each
        self.url = ""
        self._faults: list[tuple[str, int, bool]] = []
        self._holds: dict[str, Hold] = {}
        self._faults_lock = threading.Lock()

    def client_options(self) -> dict:
        return {"api_endpoint": self.url}

    def refuse(self, *, zone: str | None = None, machine_type: str | None = None, provisioning: str | None = None,
               reason: str = capacity.EXHAUSTED, region: str | None = None) -> None:
        """Inserts that match (every given criterion) end in `reason`'s operation error, until
        `clear_refusals`. QUOTA_EXCEEDED is a region's: give `region` (or a zone of it)."""
        if reason not in capacity.REASONS:
            raise ValueError(f"unknown reason {reason!r}: one of {', '.join(capacity.REASONS)}")
        if reason == capacity.QUOTA_EXCEEDED and zone is not None and region is None:
            zone, region = None, capacity.region_of(zone)
        self.store.refusals.append(capacity.Refusal(zone, region, machine_type, provisioning, reason))

    def clear_refusals(self) -> None:
        self.store.refusals.clear()

    @property
    def refused(self) -> list[tuple[str, str, str, str]]:
        """(zone, machine type, provisioning model, reason) of each refused insert, in order."""
        return list(self.store.refused)

    def instances(self, zone: str | None = None) -> list[dict]:
        """The instances as they are now (no lifecycle step taken: a test's look is not a read)."""
        with self.store.lock:
            return [public(i) for (z, _), i in sorted(self.store.instances.items()) if zone in (None, z)]

    def power_off(self, name: str, zone: str | None = None) -> dict:
        """The guest shut itself down: the instance stays, TERMINATED."""
        return public(self.store.power_off(name, zone))

    def on_change(self, listener: Listener) -> None:
        """`listener(event, instance)` for running | terminated | deleted; called in the server's
        thread with its lock held: hand the work to another thread."""
        self.store.listeners.append(listener)

    def settle(self) -> None:
        """Complete every pending operation (instances become RUNNING, deletes take effect)."""
        self.store.settle_all()

    def fail_next(self, method_id: str, *, status: int = 503, lost: bool = False, times: int = 1) -> None:
        """The next `times` requests of `method_id` are answered `status` (503: Compute's
        `backendError`, 429: `rateLimitExceeded`): refused before anything happens, or with
        `lost`, served and only the answer lost (what a client sees when a connection drops)."""
        self._faults.extend([(method_id, status, lost)] * times)

    def seed_catalog(self, *, regions: dict[str, list[str]] | None = None, down: tuple[str, ...] = (),
                     machine_types: dict[str, list[dict]] | None = None,
                     accelerator_types: dict[str, list[dict]] | None = None) -> None:
        """What regions.list and the machine/accelerator types' aggregated lists answer:
        {region: zones} (replacing the defaults), the regions whose status is DOWN, and
        {zone: [MachineType / AcceleratorType fields]}."""
        with self.store.lock:
            if regions is not None:
                self.store.regions = {region: list(zones) for region, zones in regions.items()}
            self.store.region_status.update({region: "DOWN" for region in down})
            self.store.catalog["machineTypes"].update(machine_types or {})
            self.store.catalog["acceleratorTypes"].update(accelerator_types or {})

    def preempt(self, name: str, zone: str | None = None) -> None:
        """Compute takes a Spot VM back: deleted or stopped, as its instanceTerminationAction says."""
        self.store.preempt(name, zone)

    def hold(self, method_id: str) -> Hold:
        """Requests of `method_id` wait, before being served, until `release()`: a test counts
        how many are in flight at once (`Hold.reached(n)`), with no clock involved."""
        self._holds[method_id] = Hold()
        return self._holds[method_id]

    def calls(self, method_id: str) -> list[dict]:
        return [r for r in self.requests if r["id"] == method_id]

    # -- one request ------------------------------------------------------------------------

    def answer(self, method: str, target: str, raw_body: bytes) -> tuple[int, dict]:
        parts = urlsplit(target)
        if parts.path == TALLY_PATH:  # the fake's own, outside the Compute API: for a fake in another process
            return 200, dict(Counter(str(r["id"]) for r in self.requests))
        query = parse_qs(parts.query, keep_blank_values=True)
        record: dict = {"method": method, "path": parts.path, "query": query, "body": None, "id": None}
        self.requests.append(record)
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except json.JSONDecodeError as error:
            return 400, ApiError(400, f"Invalid JSON payload received. {error.msg}.", "parseError",
                                 rpc_status="INVALID_ARGUMENT").body()
        record["body"] = body
        routed = self.document.route(method, parts.path)
        if routed is None:
            return 404, ApiError(404, "Not Found", "notFound").body()
        definition, path_parameters = routed
        record["id"] = definition.id
        try:
            params = self.store.validator.parameters(definition, path_parameters, query)
            self.store.validator.body(definition, body)
            if params["project"] != self.project:
                raise ApiError(404, f"The resource 'projects/{params['project']}' was not found", "notFound")
            handler = HANDLERS.get(definition.id)
            if handler is None:
                raise ApiError(501, f"{definition.id} is not served by the fake Compute API", "notImplemented")
            if (held := self._holds.get(definition.id)) is not None:
                held.wait()
            fault = self._fault(definition.id)
            if fault is not None and not fault[2]:
                raise _injected(fault[1])
            response = handler(self.store, params, body or {})
            if fault is not None:
                raise _injected(fault[1])
        except ApiError as error:
            return error.status, error.body()
        except Exception as error:  # a bug of the fake: say so to the client, loudly
            return 500, ApiError(500, f"fake Compute API: {type(error).__name__}: {error}", "backendError").body()
        if definition.response:  # what is sent must be what the document describes
            try:
                self.store.validator.value(definition.response, {"$ref": definition.response}, response, "response",
                                           None)
            except ApiError as error:
                return 500, ApiError(500, f"fake Compute API: its answer to {definition.id} is not a "
                                          f"{definition.response}: {error.message}", "backendError").body()
        return 200, response


    def _fault(self, method_id: str) -> tuple[str, int, bool] | None:
        with self._faults_lock:
            for index, fault in enumerate(self._faults):
                if fault[0] == method_id:
                    return self._faults.pop(index)
        return None


def _injected(status: int) -> ApiError:
    if status == 429:
        return ApiError(429, "Rate Limit Exceeded", "rateLimitExceeded", domain="usageLimits")
    return ApiError(status, "Backend Error", "backendError")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeCompute
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        status, payload = self.fake.answer(self.command, self.path, self.rfile.read(length) if length else b"")
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

    def log_message(self, *args) -> None:  # quiet test output
        pass


@contextmanager
def running_fake_compute(project: str = "oceanlab-prod", *, discovery: Path | None = None) -> Iterator[FakeCompute]:
    fake = FakeCompute(project, compute_document(discovery))
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = BurstHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-compute", daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

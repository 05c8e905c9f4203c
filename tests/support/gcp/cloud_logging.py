"""Cloud Logging for tests: a FAKE. Google ships no Cloud Logging emulator (the gcloud
emulators cover Pub/Sub, Datastore, Firestore, Bigtable and Spanner only).

Serves entries.write and entries.list over REST, as google-cloud-logging's HTTP client
(`Client(_use_grpc=False)`) and curl call them. Every request is routed and validated
against the Logging v2 discovery document that google-api-python-client ships (by the
fakes' one validator, tests/support/gce/validation.py), every answer checked against the
same document's schema, so the fake refuses what Google would refuse for shape and answers
only what Google could. Beyond shape, it keeps Cloud Logging's documented rules
(https://cloud.google.com/logging/quotas, the entries.write and entries.list references):
a log name `projects/P/logs/LOG_ID` with the LOG_ID URL-encoded (at most 511 characters of
letters, digits, `/_-.`), a monitored resource on each entry, an entry at most 256 KiB, a
request at most 10 MB, at most 64 labels, no timestamp more than a day ahead
(INVALID_ARGUMENT; with partialSuccess the valid entries are still written); lists
newest or oldest first with equal timestamps in insertId order, 50 entries a page by
default and 1,000 at most, filters in the subset of the Logging query language that
tests/support/gcp/log_filter.py understands (a 400 for anything else).

Where entries are kept: every entry in the project's `_Default` bucket (what a
`projects/P` read returns), and in each log bucket whose sink's filter it matches
(`add_sink`, or `add_rendered(main)` for the rendered google_logging_project_sink):
a read of `projects/P/locations/L/buckets/B/views/V` returns those.

    with running_cloud_logging("oceanlab-prod") as fake:    # fake.url: http://127.0.0.1:PORT
        client = logging_v2.Client(project=..., credentials=AnonymousCredentials(), _use_grpc=False,
                                   client_options={"api_endpoint": fake.url})
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from tests.support.gce.discovery import load
from tests.support.gce.validation import ApiError, invalid, rpc_error

from . import PROJECT_NUMBER
from .http import JsonApiServer, Route
from .log_filter import FilterError, Predicate, parse

MAX_ENTRY_BYTES = 256 * 1024
MAX_REQUEST_BYTES = 10 * 1000 * 1000
MAX_LABELS = 64
DEFAULT_PAGE, MAX_PAGE = 50, 1000
_LOG_NAME = re.compile(r"^projects/([^/]+)/logs/([^/]+)$")
_LOG_ID = re.compile(r"^[A-Za-z0-9/_\-.]{1,511}$")
_VIEW = re.compile(r"^projects/([^/]+)/locations/([^/]+)/buckets/([^/]+)/views/([^/]+)$")


def _now() -> datetime:
    return datetime.now(UTC)


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"Invalid timestamp: {text!r}") from None


class FakeCloudLogging:
    def __init__(self, project: str) -> None:
        self.project = project
        self.discovery = load("logging.v2")
        self.entries: list[dict] = []                     # the _Default bucket: every entry written
        self.buckets: dict[str, list[dict]] = {}          # projects/P/locations/L/buckets/B -> its entries
        self.sinks: list[tuple[str, Predicate]] = []      # (bucket, filter)
        self.requests: list[dict] = []                    # every request received, refused ones too
        self._failures: list[ApiError] = []
        self._lock = threading.Lock()
        self._insert_ids = itertools.count(1)
        self.server = JsonApiServer(self.discovery, self._handle, self.requests)
        self.url = ""

    # set-up, as Terraform would ------------------------------------------------------
    def add_sink(self, bucket: str, filter_text: str) -> None:
        """Route entries matching `filter_text` into the bucket `projects/P/locations/L/buckets/B`."""
        self.buckets.setdefault(bucket, [])
        self.sinks.append((bucket, parse(filter_text)))

    def add_rendered(self, main: dict) -> list[str]:
        """The rendered stack's log buckets and the sinks routing into them; returns the buckets."""
        resources = main.get("resource", {})
        buckets = {}
        for key, config in resources.get("google_logging_project_bucket_config", {}).items():
            buckets[f"${{google_logging_project_bucket_config.{key}.id}}"] = (
                f"projects/{config['project']}/locations/{config['location']}/buckets/{config['bucket_id']}")
        for sink in resources.get("google_logging_project_sink", {}).values():
            destination = sink["destination"].removeprefix("logging.googleapis.com/")
            self.add_sink(buckets.get(destination, destination), sink.get("filter", ""))
        return sorted(buckets.values())

    def fail_next(self, code: int = 503, status: str = "UNAVAILABLE") -> None:
        """The next entries.write or entries.list answers this error (after validation)."""
        self._failures.append(rpc_error(code, status, "The service is currently unavailable."))

    def texts(self, log_name: str | None = None, bucket: str | None = None) -> list[str]:
        """textPayloads in the _Default bucket (or `bucket`), oldest first, of one log or all."""
        entries = self.buckets[bucket] if bucket else self.entries
        return [e.get("textPayload", "") for e in sorted(entries, key=_order)
                if log_name is None or e["logName"] == log_name]

    # the API -------------------------------------------------------------------------
    def _handle(self, route: Route, body: dict) -> dict:
        handlers = {"logging.entries.write": self._write, "logging.entries.list": self._list}
        if route.method_id not in handlers:
            raise rpc_error(501, "UNIMPLEMENTED", f"{route.method_id} is not served by this fake")
        with self._lock:
            handler = handlers[route.method_id]
            if self._failures:
                error = self._failures.pop(0)
                handler(None, body)  # validated all the same, never kept
                raise error
            return handler(route, body)

    def _project(self, project: str) -> None:
        if project not in (self.project, PROJECT_NUMBER):
            raise rpc_error(403, "PERMISSION_DENIED", f"The caller does not have permission on project {project}.")

    def _write(self, route: Route | None, body: dict) -> dict:
        if len(json.dumps(body)) > MAX_REQUEST_BYTES:
            raise invalid(f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.")
        entries = body.get("entries") or []
        if not entries:
            raise invalid("entries must not be empty.")
        kept, refused = [], {}
        for index, given in enumerate(entries):
            entry = self._entry(given, body)
            problem = self._problem(entry)
            if problem:
                refused[index] = problem
            else:
                kept.append(entry)
        if refused and not body.get("partialSuccess"):
            kept = []
        if route is not None and not (body.get("dryRun") or body.get("dry_run")):
            for entry in kept:
                self.entries.append(entry)
                for bucket, matches in self.sinks:
                    if matches(entry):
                        self.buckets[bucket].append(entry)
        if refused:
            shown = [f"entries[{index}]: {problem}" for index, problem in sorted(refused.items())[:3]]
            more = f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""
            raise invalid("Log entries with invalid fields: " + "; ".join(shown) + more)
        return {}

    def _entry(self, given: dict, body: dict) -> dict:
        entry = dict(given)
        for field in ("logName", "resource"):
            if field not in entry and field in body:
                entry[field] = body[field]
        if body.get("labels"):
            entry["labels"] = {**body["labels"], **entry.get("labels", {})}
        name = _LOG_NAME.match(entry.get("logName", ""))
        if not name or not _LOG_ID.match(unquote(name.group(2))):
            raise invalid(f"Invalid log name {entry.get('logName')!r}: projects/[PROJECT_ID]/logs/[LOG_ID], the "
                          "LOG_ID URL-encoded, at most 511 characters of letters, digits, '/', '_', '-' and '.'")
        self._project(name.group(1))
        if not entry.get("resource", {}).get("type"):
            raise invalid("A monitored resource must be specified for each log entry.")
        now = _now()
        entry.setdefault("timestamp", _text(now))
        entry["timestamp"] = _text(_instant(entry["timestamp"]))
        entry.setdefault("insertId", f"fake{next(self._insert_ids):012d}")
        entry["receiveTimestamp"] = _text(now)
        return entry

    @staticmethod
    def _problem(entry: dict) -> str:
        if _instant(entry["timestamp"]) > _now() + timedelta(days=1):
            return f"timestamp {entry['timestamp']} is more than a day in the future"
        if len(json.dumps(entry, ensure_ascii=False).encode()) > MAX_ENTRY_BYTES:  # UTF-8, as stored
            return f"the entry is larger than {MAX_ENTRY_BYTES} bytes"
        if len(entry.get("labels", {})) > MAX_LABELS:
            return f"more than {MAX_LABELS} labels"
        return ""

    def _list(self, route: Route | None, body: dict) -> dict:
        names = body.get("resourceNames") or []
        if not names:
            raise invalid("resource_names must name at least one resource.")
        found: list[dict] = []
        for name in names:
            found.extend(self._entries_of(name))
        try:
            matches = parse(body.get("filter", ""))
        except FilterError as error:
            raise invalid(str(error)) from None
        order = body.get("orderBy", "timestamp asc") or "timestamp asc"
        if order not in ("timestamp asc", "timestamp desc"):
            raise invalid(f"Invalid order_by {order!r}: only \"timestamp asc\" and \"timestamp desc\" are permitted.")
        size = int(body.get("pageSize", 0) or 0)
        if size < 0:
            raise invalid("page_size must not be negative.")
        size = min(size or DEFAULT_PAGE, MAX_PAGE)
        start = self._page_start(body.get("pageToken", ""))
        chosen = sorted({e["insertId"] + e["logName"]: e for e in found if matches(e)}.values(), key=_order,
                        reverse=order == "timestamp desc")
        page = chosen[start:start + size]
        answer: dict = {"entries": page} if page else {}
        if start + size < len(chosen):
            answer["nextPageToken"] = base64.urlsafe_b64encode(f"at:{start + size}".encode()).decode()
        return answer

    def _entries_of(self, name: str) -> list[dict]:
        if name.startswith("projects/") and name.count("/") == 1:
            self._project(name.split("/")[1])
            return self.entries
        view = _VIEW.match(name)
        if not view:
            raise invalid(f"Invalid resource name {name!r}.")
        self._project(view.group(1))
        bucket = name.rsplit("/views/", 1)[0].replace(f"projects/{PROJECT_NUMBER}/", f"projects/{self.project}/")
        if bucket not in self.buckets:
            raise rpc_error(404, "NOT_FOUND", f"Log view {name} does not exist.")
        return self.buckets[bucket]

    @staticmethod
    def _page_start(token: str) -> int:
        if not token:
            return 0
        try:
            kind, number = base64.urlsafe_b64decode(token.encode()).decode().split(":")
            assert kind == "at"
            return int(number)
        except (ValueError, AssertionError):
            raise invalid("Invalid page_token.") from None


def _order(entry: dict) -> tuple[datetime, str]:
    return _instant(entry["timestamp"]), entry["insertId"]


@contextmanager
def running_cloud_logging(project: str = "oceanlab-prod") -> Iterator[FakeCloudLogging]:
    fake = FakeCloudLogging(project)
    with fake.server.running() as url:
        fake.url = url
        yield fake

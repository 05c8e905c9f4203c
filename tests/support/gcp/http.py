"""An HTTP server for a fake Google JSON API: every request routed and validated through a
discovery document (tests/support/gce/discovery.py, validation.py: the one validator of the
fakes), every answer checked against the method's response schema."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.gce.discovery import Document
from tests.support.gce.validation import ApiError, Validator, invalid, rpc_error
from tests.support.http_server import BurstHTTPServer


@dataclass(frozen=True)
class Route:
    method_id: str                  # e.g. secretmanager.projects.secrets.create
    path_params: dict[str, str]
    query: dict[str, list[str]]
    request_schema: str | None
    response_schema: str | None


Handler = Callable[[Route, dict], dict]


class JsonApiServer:
    def __init__(self, discovery: Document, handle: Handler, requests: list[dict]) -> None:
        self.discovery = discovery
        self.validator = Validator(discovery)
        self.handle = handle
        self.requests = requests

    def answer(self, method: str, target: str, raw: bytes) -> tuple[int, bytes]:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        record = {"method": method, "path": path, "query": query, "body": raw.decode(errors="replace")}
        self.requests.append(record)
        try:
            route = self._route(method, path, query, raw)
            record["method_id"] = route.method_id
            reply = self.handle(route, json.loads(raw) if raw else {})
            if route.response_schema:  # the fake's own answer fits the document
                self.validator.response(route.response_schema, reply)
            record["status"] = 200
            return 200, json.dumps(reply).encode()
        except ApiError as error:
            record["status"] = error.status
            return error.status, json.dumps(error.body()).encode()

    def _route(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> Route:
        """The method this request calls, its parameters and body validated (ApiError if not)."""
        routed = self.discovery.route(method, path)
        if routed is None:
            raise rpc_error(404, "NOT_FOUND", f"The requested URL {path} was not found on this server.")
        definition, path_params = routed
        self.validator.parameters(definition, path_params, query)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError as error:
            raise invalid(f"Invalid JSON payload received. {error}.") from None
        self.validator.body(definition, body)
        return Route(definition.id, path_params, query, definition.request, definition.response)

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        """Serve on 127.0.0.1 (a free port) in a thread; yields the base URL."""
        api = self

        class Request(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, body = api.answer(self.command, self.path, self.rfile.read(length) if length else b"")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

            def log_message(self, *args) -> None:
                pass

        server = BurstHTTPServer(("127.0.0.1", 0), Request)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True, name="fake-google-api")
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

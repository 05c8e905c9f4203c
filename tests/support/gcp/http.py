"""An HTTP server for a fake Google JSON API: every request routed and validated through a
discovery document, every answer checked against the method's response schema."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .discovery import ApiError, Discovery, Route, invalid

Handler = Callable[[Route, dict], dict]


class JsonApiServer:
    def __init__(self, discovery: Discovery, handle: Handler, requests: list[dict]) -> None:
        self.discovery = discovery
        self.handle = handle
        self.requests = requests

    def answer(self, method: str, target: str, raw: bytes) -> tuple[int, bytes]:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        record = {"method": method, "path": path, "query": query, "body": raw.decode(errors="replace")}
        self.requests.append(record)
        try:
            route = self.discovery.route(method, path, query, raw)
            record["method_id"] = route.method_id
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise invalid("Invalid JSON payload received. Expected an object.")
            reply = self.handle(route, body)
            if route.response_schema:
                self.discovery.check(route.response_schema, reply)  # the fake's own answer fits the document
            record["status"] = 200
            return 200, json.dumps(reply).encode()
        except ApiError as error:
            record["status"] = error.code
            return error.code, error.body()

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

        server = ThreadingHTTPServer(("127.0.0.1", 0), Request)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True, name="fake-google-api")
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

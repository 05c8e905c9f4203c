"""An HTTP relay in front of moto that can hold back the answer to one kind of request.

Used to kill a process at an exact point: `hold("RunInstances")` lets the next such
request reach moto (the instances are launched) and keeps the answer from the caller
until `release()`, so a test can SIGKILL the caller between the cloud's launch and its
own record of it. Everything else is passed through. Loopback only.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from tests.support.http_server import BurstHTTPServer

_DROPPED = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class HoldingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.held = threading.Event()  # a held request's answer came back from upstream
        self._release = threading.Event()
        self._action: str | None = None
        self._containing = ""
        self._lock = threading.Lock()
        self.server = BurstHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def hold(self, action: str, containing: str = "") -> None:
        """Hold the answer to the next request whose body names `action` (e.g. RunInstances)
        and holds `containing` (e.g. "MinCount=2")."""
        with self._lock:
            self._action, self._containing = action, containing
            self.held, self._release = threading.Event(), threading.Event()

    def release(self) -> None:
        with self._lock:
            self._action = None
        self._release.set()

    def _claims(self, body: bytes) -> threading.Event | None:
        with self._lock:
            if self._action and f"Action={self._action}".encode() in body and self._containing.encode() in body:
                self._action = None
                return self.held
        return None

    def _handler(self):
        proxy = self

        class Relay(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args) -> None:
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                held = proxy._claims(body)
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _DROPPED}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    answer = connection.getresponse()
                    data = answer.read()
                finally:
                    connection.close()
                if held is not None:
                    release = proxy._release
                    held.set()
                    release.wait(timeout=300)
                with contextlib.suppress(OSError):  # the caller may be dead by now
                    self.send_response(answer.status)
                    for key, value in answer.getheaders():
                        if key.lower() not in _DROPPED:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

        return Relay


@contextlib.contextmanager
def holding_proxy(upstream: str) -> Iterator[HoldingProxy]:
    proxy = HoldingProxy(upstream)
    thread = threading.Thread(target=proxy.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.release()
        proxy.server.shutdown()
        proxy.server.server_close()
        thread.join(timeout=10)

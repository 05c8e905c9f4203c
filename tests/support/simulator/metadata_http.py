"""What both clouds' metadata servers (imds.py, gce_metadata.py) run on: an HTTP server in a
thread of its own, on a socket already listening on 169.254.169.254:80 inside one instance's
namespace (made there by the simulator), so only that instance reaches it."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler

from tests.support.http_server import BurstHTTPServer


class NamespacedHttpServer:
    def __init__(self, listener: socket.socket, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self.server = BurstHTTPServer(("169.254.169.254", 80), handler, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = listener
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name=name)

    def start(self) -> NamespacedHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        with contextlib.suppress(OSError):
            self.server.socket.close()
        self._thread.join(timeout=5)

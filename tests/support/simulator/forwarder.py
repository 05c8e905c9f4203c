"""A TCP forwarder: accepts on one socket, relays to a connection made for each client.

Instances reach the moto server (on the host's 127.0.0.1) this way as their AWS API
endpoint, standing in for the VPC endpoints (listening in the VPC namespace, connecting
on the host's loopback); the load balancers work the other way round.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class Forwarder:
    """Relays each connection accepted on `listener` to a connection made by `connect()`."""

    def __init__(self, listener: socket.socket, connect: Callable[[], socket.socket]) -> None:
        self.listener = listener
        self.connect = connect
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="sim-forwarder")

    def start(self) -> Forwarder:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = self.connect()
        except (OSError, LookupError):  # target down, or none to send to
            client.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._thread.join(timeout=5)

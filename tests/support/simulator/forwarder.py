"""A TCP forwarder: accepts inside the VPC namespace, connects to the host's loopback.

This is how sandboxes reach moto (the stand-in for the AWS API and the VPC endpoints)
without the VPC having any route out: the only way out is this one port.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class Forwarder:
    def __init__(self, listener: socket.socket, target: tuple[str, int]):
        self._listener = listener
        self._target = target
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, name="sim-forwarder", daemon=True)

    def start(self) -> Forwarder:
        self._thread.start()
        return self

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.close()
        self._thread.join(timeout=10)

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=30)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            # The second pump to finish closes both ends.
            with self._lock:
                done = source not in self._open or sink not in self._open
                self._open.discard(source)
                self._open.discard(sink)
            if done:
                for sock in (source, sink):
                    with contextlib.suppress(OSError):
                        sock.close()

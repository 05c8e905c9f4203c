"""The hub's proxy: configurable-http-proxy (its Python port), with two websocket fixes
and room for many long requests at once.

- Its handler connects to the target first, forwarding the browser's
  Sec-WebSocket-Protocol offer, but then answers the browser without the subprotocol the
  target chose, and a browser drops a handshake that names none after offering some. That
  breaks the Dask dashboard behind the hub (Bokeh sends its session token as a
  subprotocol). Here the handler answers with the target's choice.
- It forwards the browser's binary messages to the target as text frames. Harmless while
  every negotiation failed (JupyterLab then falls back to its JSON protocol), fatal once
  one succeeds (JupyterLab's binary v1 kernel protocol). Here binary stays binary.
- It forwards every HTTP request with tornado's shared `AsyncHTTPClient()`, whose default
  `max_clients` is 10: the 11th request in flight waits in tornado's queue and, after
  min(connect_timeout 20 s, request_timeout) there, fails (599, then the proxy's 503). Each
  booting cloud machine holds a long poll of the gateway's machines API (up to 30 s), and
  dask-gateway holds `GET /clusters/<c>?wait` ~20 s, so a 200-worker cluster start queued
  ~190 polls behind 10 slots. See `request_slots`.

Run as `python -m deploy.local.http_proxy ARGS` with configurable-http-proxy's arguments.
"""

from __future__ import annotations

import resource

from configurable_http_proxy import cli, handlers
from tornado.httpclient import AsyncHTTPClient

# Requests forwarded at once (the rest wait in tornado's queue, 20 s at most). Enough for
# twenty 200-worker cluster starts at once (one long poll per booting machine) beside every
# user's hub, notebook and gateway traffic. tornado's simple client allocates nothing per
# slot (curl_httpclient would make a curl handle for each): a slot in use holds two
# sockets, the browser's and the target's, so the real bound is the open-files limit.
MOST_REQUESTS_IN_FLIGHT = 4096
# Open files per forwarded request: its two sockets, and as many again for websockets
# (which do not take a slot), the listeners and the log.
FILES_PER_SLOT = 4


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft limit of open files towards `wanted`, within its hard
    limit (systemd's default soft limit is 1024, its hard limit far higher); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft == resource.RLIM_INFINITY:
        return wanted
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # e.g. macOS caps the soft limit below an infinite hard one
            return soft
        return target
    return soft


def request_slots() -> int:
    """The number of requests the proxy forwards at once: MOST_REQUESTS_IN_FLIGHT, or fewer
    where the open-files limit cannot be raised enough (queueing beats running out of files)."""
    open_files = raise_open_files_limit(MOST_REQUESTS_IN_FLIGHT * FILES_PER_SLOT)
    return max(10, min(MOST_REQUESTS_IN_FLIGHT, open_files // FILES_PER_SLOT))


def _target_subprotocol(self, subprotocols: list[str]) -> str | None:
    client = getattr(self, "ws_client", None)  # connected before the browser's handshake ends
    return client.selected_subprotocol if client is not None else None


def _to_target(self, message: str | bytes) -> None:
    if self.ws_client:
        prefix = self.target["prefix"] if self.target else ""
        if prefix:  # activity on a route, as the original handler records it
            self.proxy.update_last_activity(prefix)
        self.ws_client.write_message(message, binary=isinstance(message, bytes))


def main() -> None:
    handlers.ProxyHandler.select_subprotocol = _target_subprotocol
    handlers.ProxyHandler.on_message = _to_target
    # Before the proxy's first request: the handlers' AsyncHTTPClient() is one per IOLoop,
    # made with the class's configuration at that moment. `--proxy-timeout` stays the
    # request_timeout of each forwarded request, so a long poll is cut only past it.
    AsyncHTTPClient.configure(None, max_clients=request_slots())
    cli.main()  # a click command: parses sys.argv


if __name__ == "__main__":
    main()

"""The hub's proxy: configurable-http-proxy (its Python port), with one fix.

Its websocket handler connects to the target first, forwarding the browser's
Sec-WebSocket-Protocol offer, but then answers the browser without the subprotocol the
target chose, and a browser drops a handshake that names none after offering some. That
breaks the Dask dashboard behind the hub (Bokeh sends its session token as a subprotocol).
Here the handler answers with the target's choice. Run as
`python -m deploy.local.http_proxy ARGS` with configurable-http-proxy's own arguments.
"""

from __future__ import annotations

from configurable_http_proxy import cli, handlers


def _target_subprotocol(self, subprotocols: list[str]) -> str | None:
    client = getattr(self, "ws_client", None)  # connected before the browser's handshake ends
    return client.selected_subprotocol if client is not None else None


def main() -> None:
    handlers.ProxyHandler.select_subprotocol = _target_subprotocol
    cli.main()  # a click command: parses sys.argv


if __name__ == "__main__":
    main()

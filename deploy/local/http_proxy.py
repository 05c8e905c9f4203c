"""The hub's proxy: configurable-http-proxy (its Python port), with two websocket fixes.

- Its handler connects to the target first, forwarding the browser's
  Sec-WebSocket-Protocol offer, but then answers the browser without the subprotocol the
  target chose, and a browser drops a handshake that names none after offering some. That
  breaks the Dask dashboard behind the hub (Bokeh sends its session token as a
  subprotocol). Here the handler answers with the target's choice.
- It forwards the browser's binary messages to the target as text frames. Harmless while
  every negotiation failed (JupyterLab then falls back to its JSON protocol), fatal once
  one succeeds (JupyterLab's binary v1 kernel protocol). Here binary stays binary.

Run as `python -m deploy.local.http_proxy ARGS` with configurable-http-proxy's arguments.
"""

from __future__ import annotations

from configurable_http_proxy import cli, handlers


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
    cli.main()  # a click command: parses sys.argv


if __name__ == "__main__":
    main()

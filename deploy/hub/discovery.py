"""The platform's discovery document: `GET <hub>/services/platform/discovery.json`.

A hub-managed service (started and stopped by JupyterHub, routed by its proxy) so that a
laptop needs only the hub URL: `graticule.login(URL)` reads here where the gateway sits
behind the hub and the address of the Dask scheduler proxy. Public on purpose: it holds
addresses only, never a secret. The document comes from the hub's configuration in
GRATICULE_DISCOVERY; where to listen from JupyterHub (JUPYTERHUB_SERVICE_URL/_PREFIX).
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from deploy.runtime import env

DOCUMENT = "discovery.json"


def document_from(environ: dict[str, str]) -> bytes:
    values = json.loads(environ[env.DISCOVERY])
    body = {
        "apiVersion": 1,
        "platform": values["platform"],
        "gateway": {"path": values["gateway_path"], "scheduler_proxy": values.get("scheduler_proxy")},
    }
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


def server(environ: dict[str, str]) -> ThreadingHTTPServer:
    body = document_from(environ)
    path = environ.get("JUPYTERHUB_SERVICE_PREFIX", "/").rstrip("/") + "/" + DOCUMENT

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if urlsplit(self.path).path != path:
                self.send_error(404, f"only {path} is served here")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")  # ports may change after `up`
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            pass  # the hub's proxy logs requests already

    address = urlsplit(environ["JUPYTERHUB_SERVICE_URL"])
    return ThreadingHTTPServer((address.hostname or "127.0.0.1", address.port or 80), Handler)


def main() -> None:
    httpd = server(dict(os.environ))
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()

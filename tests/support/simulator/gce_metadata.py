"""A Compute Engine metadata server stand-in, one per instance, on 169.254.169.254:80 inside
that instance's namespace only (the guest's /etc/hosts names it metadata.google.internal).

As Google's: paths under /computeMetadata/v1/; a request without `Metadata-Flavor: Google`
(or with X-Forwarded-For) gets 403; answers carry `Metadata-Flavor: Google`; a directory
lists its children (sub-directories with '/'), asked without its trailing slash it answers
301 to it; `?recursive=true` gives a directory as JSON (camelCase keys, but attribute keys
as set); `?alt=json` a value as JSON. Served: instance id, name, hostname, zone, machine
type, network-interfaces/0 (ip, network, subnetmask, gateway), attributes (read from the
fake Compute API at each request, so metadata set later shows, as on GCE), service
accounts (`default` and by email: email, aliases, scopes, a fake `token` the fakes
accept, and `identity?audience=AUD[&format=full]`: a signed identity token, gce_identity.py),
project id and number.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from .metadata_http import NamespacedHttpServer

ROOT = "/computeMetadata/v1/"
DYNAMIC = ("token",)  # computed per request, and not part of a recursive listing (as on GCE)
_IDENTITY = re.compile(r"instance/service-accounts/([^/]+)/identity")
_MISSING_HEADER = (b"Your client does not have permission to get URL from this server. "
                   b"Missing Metadata-Flavor:Google header.\n")


def _camel(key: str) -> str:
    return re.sub(r"-([a-z0-9])", lambda m: m.group(1).upper(), key)


class GceMetadata:
    """The tree one instance's metadata server answers from: nested dicts of strings and lists;
    `attributes` is called for each request under instance/attributes."""

    def __init__(self, instance: dict, project: dict, attributes: Callable[[], dict[str, str]],
                 identity: Callable[[str, str, bool], str] | None = None) -> None:
        self.instance = instance
        self.project = project
        self.attributes = attributes
        self.identity = identity  # (audience, account email, full) -> a signed token

    def tree(self) -> dict:
        return {"instance": {**self.instance, "attributes": self.attributes()}, "project": self.project}

    def lookup(self, path: str) -> object | None:
        node: object = self.tree()
        for part in [p for p in path.split("/") if p]:
            if not isinstance(node, dict) or part not in node:
                if part in DYNAMIC and isinstance(node, dict) and "email" in node:
                    return _token()
                return None
            node = node[part]
        return node


def _token() -> dict:
    return {"access_token": f"ya29.simulated-{secrets.token_urlsafe(24)}", "expires_in": 3599, "token_type": "Bearer"}


def _as_json(node: object, camel: bool) -> object:
    if isinstance(node, dict):
        return {(_camel(k) if camel else k): _as_json(v, camel and k != "attributes") for k, v in node.items()}
    return node


def _as_text(node: object) -> str:
    """A value as the server writes it: a list (aliases, scopes, tags) one item a line."""
    return "".join(f"{item}\n" for item in node) if isinstance(node, list) else str(node)


def answer(metadata: GceMetadata, headers, target: str) -> tuple[int, dict[str, str], bytes]:
    """(status, extra headers, body) for one GET, as Google's metadata server gives them."""
    if headers.get("Metadata-Flavor") != "Google" or headers.get("X-Forwarded-For"):
        return 403, {"Content-Type": "text/html; charset=UTF-8"}, _MISSING_HEADER
    parts = urlsplit(target)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.path in ("/", "/computeMetadata/", "/computeMetadata"):
        return 200, {"Content-Type": "application/text"}, b"computeMetadata/\n" if parts.path == "/" else b"v1/\n"
    if not parts.path.startswith(ROOT) and parts.path != ROOT.rstrip("/"):
        return 404, {"Content-Type": "text/html; charset=UTF-8"}, b"Not Found\n"
    key = parts.path.removeprefix(ROOT.rstrip("/")).strip("/")
    if (found := _IDENTITY.fullmatch(key)) and metadata.identity is not None:
        account = metadata.lookup(f"instance/service-accounts/{found.group(1)}")
        if not isinstance(account, dict) or "email" not in account:
            return 404, {"Content-Type": "text/html; charset=UTF-8"}, b"Not Found\n"
        if not query.get("audience"):
            return 400, {"Content-Type": "text/html; charset=UTF-8"}, b"non-empty audience parameter required\n"
        token = metadata.identity(query["audience"], account["email"], query.get("format") == "full")
        return 200, {"Content-Type": "application/text"}, token.encode()
    node = metadata.lookup(key)
    if node is None:
        return 404, {"Content-Type": "text/html; charset=UTF-8"}, b"Not Found\n"
    if isinstance(node, dict) and "access_token" in node:
        return 200, {"Content-Type": "application/json"}, json.dumps(node).encode()
    if isinstance(node, dict):
        if not parts.path.endswith("/") and key:
            return 301, {"Location": f"{parts.path}/", "Content-Type": "text/html"}, b""
        if query.get("recursive") == "true":
            return 200, {"Content-Type": "application/json"}, json.dumps(_as_json(node, True)).encode()
        listing = "".join(f"{k}/\n" if isinstance(v, dict) else f"{k}\n" for k, v in node.items())
        return 200, {"Content-Type": "application/text"}, listing.encode()
    if query.get("alt") == "json":
        return 200, {"Content-Type": "application/json"}, json.dumps(_as_json(node, False)).encode()
    return 200, {"Content-Type": "application/text"}, _as_text(node).encode()


def _handler(metadata: GceMetadata) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def version_string(self) -> str:
            return "Metadata Server for VM"

        def do_GET(self) -> None:
            status, headers, body = answer(metadata, self.headers, self.path)
            self.send_response(status)
            self.send_header("Metadata-Flavor", "Google")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    return Handler


class GceMetadataServer(NamespacedHttpServer):
    def __init__(self, listener: socket.socket, metadata: GceMetadata) -> None:
        super().__init__(listener, _handler(metadata), "sim-gce-metadata")

"""An instance metadata service stand-in (IMDSv2 only, as the platform's launch templates require).

One per instance, listening on 169.254.169.254:80 inside that instance's namespace only.
Serves what the platform's VMs read: instance-id, local-ipv4, placement, instance type,
user data, the identity document, and the role credentials, which are moto's own (an STS
AssumeRole of the instance profile's role), so SDKs inside use them against moto; and,
once `interrupt` was called (`Simulator.interrupt_spot`), a spot interruption notice.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from .metadata_http import NamespacedHttpServer

TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"


class InstanceMetadata:
    """What the IMDS answers for one instance; `credentials` is called for each request of them."""

    def __init__(self, fields: dict[str, str], user_data: bytes, identity: dict,
                 role: str | None, credentials: Callable[[], dict]) -> None:
        self.fields = fields
        self.user_data = user_data
        self.identity = identity
        self.role = role
        self.role_arn = ""
        self.credentials = credentials
        self.resolve_role: Callable[[], tuple[str, str] | None] | None = None

    def interrupt(self, action: str, at: datetime) -> None:
        """EC2's spot interruption notice from now on (404 before): `spot/instance-action`
        `{"action": ..., "time": "YYYY-MM-DDTHH:MM:SSZ"}`, and for a termination the older
        `spot/termination-time` item too."""
        when = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.fields["spot/instance-action"] = json.dumps({"action": action, "time": when})
        if action == "terminate":
            self.fields["spot/termination-time"] = when

    def _current_role(self) -> None:
        """Resolve a role not known at boot (once found, kept)."""
        if self.role is None and self.resolve_role is not None:
            found = self.resolve_role()
            if found:
                self.role, self.role_arn = found

    def answer(self, path: str) -> tuple[int, bytes]:
        if "/iam" in path:
            self._current_role()
        if path == "/latest/user-data":
            return (200, self.user_data) if self.user_data else (404, b"")
        if path == "/latest/dynamic/instance-identity/document":
            return 200, json.dumps(self.identity, indent=2).encode()
        prefix = "/latest/meta-data/"
        if not path.startswith(prefix) and path != prefix.rstrip("/"):
            return 404, b""
        key = "" if path == prefix.rstrip("/") else path.removeprefix(prefix).rstrip("/")
        if key in self.fields:
            return 200, self.fields[key].encode()
        listing = self._listing(key)
        if listing:
            return 200, "\n".join(listing).encode()
        if key.startswith("iam") and self.role:
            if key == f"iam/security-credentials/{self.role}":
                return 200, json.dumps(self.credentials(), indent=2).encode()
            if key == "iam/info":
                return 200, json.dumps({"Code": "Success", "InstanceProfileArn": self.identity.get("profileArn", "")}
                                       ).encode()
        return 404, b""

    def _listing(self, key: str) -> list[str]:
        """A directory of the metadata tree, as IMDS lists one: children, sub-directories with '/'."""
        keys = [*self.fields, *(["iam/info", f"iam/security-credentials/{self.role}"] if self.role else [])]
        below = [k.removeprefix(f"{key}/") for k in keys if not key or k.startswith(f"{key}/")]
        if key == "iam/security-credentials":
            return [self.role] if self.role else []
        return sorted({part.split("/")[0] + ("/" if "/" in part else "") for part in below})


def _handler(metadata: InstanceMetadata, tokens: set[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self) -> None:
            if self.path != "/latest/api/token" or not self.headers.get(TTL_HEADER):
                self._reply(HTTPStatus.BAD_REQUEST, b"")
                return
            token = secrets.token_urlsafe(32)
            tokens.add(token)
            self._reply(200, token.encode())

        def do_GET(self) -> None:
            if self.headers.get(TOKEN_HEADER) not in tokens:
                self._reply(HTTPStatus.UNAUTHORIZED, b"")  # IMDSv1 is off, as on the platform's VMs
                return
            self._reply(*metadata.answer(self.path.split("?", 1)[0]))

        def log_message(self, *args) -> None:
            pass

    return Handler


class MetadataServer(NamespacedHttpServer):
    def __init__(self, listener: socket.socket, metadata: InstanceMetadata) -> None:
        super().__init__(listener, _handler(metadata, set()), "sim-imds")
        self.metadata = metadata


def fallback_credentials() -> dict:
    """Credentials of the shape IMDS returns; moto accepts any key."""
    expires = datetime.now(UTC) + timedelta(hours=6)
    return {"Code": "Success", "LastUpdated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Type": "AWS-HMAC", "AccessKeyId": "ASIASIMULATEDINSTANCE", "SecretAccessKey": "simulated",
            "Token": "simulated", "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}

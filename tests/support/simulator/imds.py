"""The instance metadata service stand-in: IMDSv2 only, listening inside one sandbox.

It answers at 169.254.169.254:80 in the sandbox's namespace (the address is on the
sandbox's loopback), so nothing on the host ever talks to a real link-local address.
Credentials are fake but moto accepts any.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADDRESS = "169.254.169.254"
EXPIRATION = "2099-01-01T00:00:00Z"  # fixed: the simulator has no clock of its own


@dataclass(frozen=True)
class InstanceMetadata:
    instance_id: str
    local_ipv4: str
    availability_zone: str
    region: str
    instance_type: str
    role: str | None
    user_data: bytes

    def paths(self) -> dict[str, str | bytes]:
        meta = {
            "instance-id": self.instance_id,
            "local-ipv4": self.local_ipv4,
            "instance-type": self.instance_type,
            "placement/availability-zone": self.availability_zone,
            "placement/region": self.region,
        }
        if self.role:
            meta["iam/security-credentials/"] = self.role
            meta[f"iam/security-credentials/{self.role}"] = json.dumps({
                "Code": "Success", "Type": "AWS-HMAC", "LastUpdated": "2026-01-01T00:00:00Z",
                "AccessKeyId": "ASIASIMULATOR" + self.instance_id[-7:].upper(),
                "SecretAccessKey": "simulated-secret", "Token": "simulated-session-token",
                "Expiration": EXPIRATION,
            })
        document = {"instanceId": self.instance_id, "privateIp": self.local_ipv4, "region": self.region,
                    "availabilityZone": self.availability_zone, "instanceType": self.instance_type}
        return {
            **{f"/latest/meta-data/{key}": value for key, value in meta.items()},
            "/latest/meta-data/": "\n".join(sorted(k for k in meta if "/" not in k.rstrip("/"))),
            "/latest/dynamic/instance-identity/document": json.dumps(document),
            "/latest/user-data": self.user_data,
        }


class _Handler(BaseHTTPRequestHandler):
    server: _MetadataServer

    def log_message(self, format, *args):  # quiet: the tests read sandbox logs instead
        pass

    def _reply(self, status: int, body: str | bytes) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self._reply(400, "")
        token = secrets.token_urlsafe(32)
        self.server.tokens.add(token)
        self._reply(200, token)

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") not in self.server.tokens:
            return self._reply(401, "")  # IMDSv2 required, as the rendered launch templates demand
        body = self.server.metadata.paths().get(self.path)
        self._reply(200, body) if body is not None else self._reply(404, "")


class _MetadataServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, listener: socket.socket, metadata: InstanceMetadata):
        super().__init__((ADDRESS, 80), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener
        self.metadata = metadata
        self.tokens: set[str] = set()


class MetadataService:
    def __init__(self, listener: socket.socket, metadata: InstanceMetadata):
        self._server = _MetadataServer(listener, metadata)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sim-imds", daemon=True)

    def start(self) -> MetadataService:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

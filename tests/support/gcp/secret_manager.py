"""Secret Manager for tests: a FAKE. Google ships no Secret Manager emulator, and PyPI has no
maintained one (pytest-gcpsecretmanager patches the client inside the test process, which
a VM's processes would not see; gcplocal is a one-release 0.1.0).

Serves the global secrets' REST calls that `google-cloud-secret-manager` (transport="rest")
and `curl` make: secrets create/get/list/patch (labels, annotations)/delete, versions addVersion/get/list/access
(`latest` or a number). Every request is routed and validated against the Secret Manager
v1 discovery document that google-api-python-client ships (by the fakes' one validator,
tests/support/gce/validation.py), and every response is checked against the same document's schema before it is sent,
so the fake refuses what Google would refuse for shape and answers only what Google could.
Any bearer token is accepted (the metadata server stand-in hands out fake ones).
Resource names in answers carry the project number, as Google's do; requests may use the
project id or number.

    with running_secret_manager("oceanlab-prod") as sm:   # sm.url: http://127.0.0.1:PORT
        client = secretmanager_v1.SecretManagerServiceClient(
            credentials=AnonymousCredentials(), transport="rest",
            client_options={"api_endpoint": sm.url})
"""

from __future__ import annotations

import base64
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import google_crc32c

from tests.support.gce.discovery import load
from tests.support.gce.validation import invalid, rpc_error

from . import PROJECT_NUMBER
from .http import JsonApiServer, Route


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeSecretManager:
    def __init__(self, project: str) -> None:
        self.project = project
        self.discovery = load("secretmanager.v1")
        self.secrets: dict[str, dict] = {}          # secret id -> Secret
        self.versions: dict[str, list[dict]] = {}   # secret id -> [{"version": SecretVersion, "data": bytes}]
        self.requests: list[dict] = []              # every request received, refused ones too
        self._lock = threading.Lock()
        self._etags = itertools.count(1)
        self.server = JsonApiServer(self.discovery, self._handle, self.requests)
        self.url = ""

    # names ---------------------------------------------------------------------------
    def _secret_id(self, name: str) -> str:
        """`projects/P/secrets/S[/...]` -> S, for this fake's project (by id or number)."""
        parts = name.split("/")
        if parts[1] not in (self.project, PROJECT_NUMBER):
            raise rpc_error(403, "PERMISSION_DENIED", f"Permission denied on resource project {parts[1]}.")
        return parts[3]

    def _secret_name(self, secret_id: str) -> str:
        return f"projects/{PROJECT_NUMBER}/secrets/{secret_id}"

    def _secret(self, name: str) -> tuple[str, dict]:
        secret_id = self._secret_id(name)
        if secret_id not in self.secrets:
            raise rpc_error(404, "NOT_FOUND", f"Secret [{self._secret_name(secret_id)}] not found.")
        return secret_id, self.secrets[secret_id]

    # the API -------------------------------------------------------------------------
    def _handle(self, route: Route, body: dict) -> dict:
        handlers = {"create": self._create, "get": self._get, "list": self._list, "delete": self._delete,
                    "addVersion": self._add_version, "patch": self._patch, "versions.get": self._get_version,
                    "versions.list": self._list_versions, "versions.access": self._access}
        action = route.method_id.removeprefix("secretmanager.projects.secrets.")
        if route.method_id.startswith("secretmanager.projects.locations") or action not in handlers:
            raise rpc_error(501, "UNIMPLEMENTED", f"{route.method_id} is not served by this fake")
        with self._lock:
            return handlers[action](route, body)

    def _create(self, route: Route, body: dict) -> dict:
        self._secret_id(route.path_params["parent"] + "/secrets/-")
        secret_id = route.query.get("secretId", [""])[0]
        if not secret_id:
            raise invalid("The request is missing a secret_id.")
        if not all(c.isalnum() or c in "-_" for c in secret_id) or len(secret_id) > 255:
            raise invalid("Secret ID must be at most 255 characters of letters, digits, underscores and hyphens.")
        if "automatic" not in body.get("replication", {}) and "userManaged" not in body.get("replication", {}):
            raise invalid("Secret.replication must be set.")
        if secret_id in self.secrets:
            raise rpc_error(409, "ALREADY_EXISTS", f"Secret [{self._secret_name(secret_id)}] already exists.")
        secret = {**body, "name": self._secret_name(secret_id), "createTime": _now(), "etag": f'"{next(self._etags)}"'}
        self.secrets[secret_id] = secret
        self.versions[secret_id] = []
        return secret

    def _get(self, route: Route, body: dict) -> dict:
        return self._secret(route.path_params["name"])[1]

    def _list(self, route: Route, body: dict) -> dict:
        self._secret_id(route.path_params["parent"] + "/secrets/-")
        secrets = [self.secrets[k] for k in sorted(self.secrets)]
        return {"secrets": secrets, "totalSize": len(secrets)} if secrets else {}

    def _patch(self, route: Route, body: dict) -> dict:
        """Only the fields `updateMask` names change (labels and annotations are what callers set)."""
        secret_id, secret = self._secret(route.path_params["name"])
        paths = [p for p in route.query.get("updateMask", [""])[0].split(",") if p]
        if not paths:
            raise invalid("update_mask must be set.")
        mutable = ("labels", "annotations", "expireTime", "ttl", "topics", "rotation", "versionAliases")
        if unknown := [p for p in paths if p not in mutable]:
            raise invalid(f"update_mask names fields that cannot be updated: {', '.join(unknown)}.")
        for path in paths:
            if path in body:
                secret[path] = body[path]
            else:
                secret.pop(path, None)
        secret["etag"] = f'"{next(self._etags)}"'
        self.secrets[secret_id] = secret
        return secret

    def _delete(self, route: Route, body: dict) -> dict:
        secret_id, _ = self._secret(route.path_params["name"])
        del self.secrets[secret_id]
        del self.versions[secret_id]
        return {}

    def _add_version(self, route: Route, body: dict) -> dict:
        secret_id, _ = self._secret(route.path_params["parent"])
        payload = body.get("payload", {})
        data = base64.b64decode(payload.get("data", ""))
        checksum = google_crc32c.value(data)
        if "dataCrc32c" in payload and int(payload["dataCrc32c"]) != checksum:
            raise invalid("Checksum mismatch: data_crc32c does not match the payload's CRC32C.")
        number = len(self.versions[secret_id]) + 1
        version = {"name": f"{self._secret_name(secret_id)}/versions/{number}", "createTime": _now(),
                   "state": "ENABLED", "etag": f'"{next(self._etags)}"', "clientSpecifiedPayloadChecksum":
                   "dataCrc32c" in payload}
        self.versions[secret_id].append({"version": version, "data": data})
        return version

    def _version(self, name: str) -> dict:
        secret_id, _ = self._secret(name.rsplit("/versions/", 1)[0])
        wanted = name.rsplit("/", 1)[1]
        enabled = [v for v in self.versions[secret_id] if v["version"]["state"] == "ENABLED"]
        if wanted == "latest":
            if not enabled:
                raise rpc_error(404, "NOT_FOUND", f"Secret [{self._secret_name(secret_id)}] not found or has no "
                                                 "versions.")
            return enabled[-1]
        if not wanted.isdigit() or not 0 < int(wanted) <= len(self.versions[secret_id]):
            raise rpc_error(404, "NOT_FOUND", f"Secret Version [{self._secret_name(secret_id)}/versions/{wanted}] "
                                             "not found.")
        return self.versions[secret_id][int(wanted) - 1]

    def _get_version(self, route: Route, body: dict) -> dict:
        return self._version(route.path_params["name"])["version"]

    def _list_versions(self, route: Route, body: dict) -> dict:
        secret_id, _ = self._secret(route.path_params["parent"])
        versions = [v["version"] for v in reversed(self.versions[secret_id])]
        return {"versions": versions, "totalSize": len(versions)} if versions else {}

    def _access(self, route: Route, body: dict) -> dict:
        found = self._version(route.path_params["name"])
        return {"name": found["version"]["name"], "payload": {
            "data": base64.b64encode(found["data"]).decode(), "dataCrc32c": str(google_crc32c.value(found["data"]))}}


@contextmanager
def running_secret_manager(project: str = "oceanlab-prod") -> Iterator[FakeSecretManager]:
    fake = FakeSecretManager(project)
    with fake.server.running() as url:
        fake.url = url
        yield fake

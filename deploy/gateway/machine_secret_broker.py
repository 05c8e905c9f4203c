"""The machine-secret broker: how a launched GCP machine gets its secret (HashiCorp Vault's
GCP auth method, in the gateway's API beside `machines_api.py`).

    GET /api/graticule/v1/machine-secret/{key}
        Authorization: Bearer <instance identity token>
        -> 200 the secret's JSON ({"env": {...}, "files": {...}})
           401 no token, a bad signature, another audience, expired, not a Compute Engine
               instance's token (format=full) or another project's instance
           403 a valid token of an instance that is gone, or whose labels do not name the
               secret's owner
           404 no such secret
           503 the signing certificates could not be fetched, or Compute could not be asked

The machine asks its metadata server for
`instance/service-accounts/default/identity?audience=<AUDIENCE>&format=full`, with
AUDIENCE = `naming.machine_secrets_audience(platform)` (`graticule:<platform>:machine-secrets`).
The broker verifies the token with google-auth against Google's signing certificates
(`deploy.cloud.google_clients.identity_certs_url`: the endpoints file names a test's), kept
as long as their response's Cache-Control allows (`deploy.gateway.signing_certs`), checks
its issuer, and reads `google.compute_engine`: the instance's project must be the
platform's. Then it reads that instance (instances.get by the token's zone and name, with
the hub's account): it must still be the instance the token was issued to (the same numeric
id: a name is reused by a later launch) and carry the secret's owner labels (platform and
cluster, or notebook server: `MachineSecret.owner`). Only the hub can set labels (its IAM
lets it alone create or label the platform's instances; machines' accounts have no Compute
role), so a cluster of any size is authorized with nothing written per machine. Only the
hub's service account can read the secrets themselves (`deploy.cloud.gcp_machine_secrets`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web

from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets
from deploy.cloud.machines import MachinesError
from deploy.gateway.signing_certs import CertificatesUnavailable, SigningCerts

ROUTE = "/machine-secret/{key}"
ISSUERS = ("https://accounts.google.com", "accounts.google.com")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}")
# A request's blocking calls (a Secret Manager read, a Compute instances.get) run in threads of
# the broker's own: a cluster's machines boot together and ask at once. In the loop's default
# executor (min(32, cores + 4) threads: 6 on a 2-vCPU hub) they went 6 at a time and held up
# the gateway's other blocking work (each worker's budget admission, the launches) as long.
# 32 threads, at an estimated 0.1 s a Google call (two a request), serve a 300-machine start in
# about two seconds.
BROKER_THREADS = 32
_threads = ThreadPoolExecutor(BROKER_THREADS, thread_name_prefix="machine-secret-broker")


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


# (zone, instance name) -> the instance's JSON as Compute answers instances.get, None if gone
# (`deploy.cloud.gcp.GCPMachines.instance`); MachinesError when Compute cannot be asked.
InstanceReader = Callable[[str, str], dict | None]


@dataclass
class MachineSecretBroker:
    secrets: GcpMachineSecrets
    audience: str
    certs_url: str
    instances: InstanceReader
    clock: Callable[[], float] = time.monotonic  # the certificates' cache's; tests move it

    def __post_init__(self) -> None:
        self.certs = SigningCerts(self.certs_url, clock=self.clock)

    def instance_of(self, token: str) -> dict:
        """The token's `google.compute_engine` claims (instance_name, instance_id, zone,
        project_id) if it is valid; Refused(401/503) otherwise."""
        from google.auth import exceptions, jwt

        try:
            header = jwt.decode_header(token)
            key_id = header.get("kid") if isinstance(header, dict) else None
            certs = self.certs.for_key(key_id if isinstance(key_id, str) else None)
            claims = jwt.decode(token, certs=certs, audience=self.audience)
        except CertificatesUnavailable as error:
            raise Refused(503, f"the identity token's certificates could not be fetched: {error}") from None
        except (ValueError, exceptions.GoogleAuthError) as error:  # signature, audience, expiry, shape
            raise Refused(401, f"the identity token is not valid: {error}") from None
        if claims.get("iss") not in ISSUERS:
            raise Refused(401, "the identity token is not Google's")
        instance = (claims.get("google") or {}).get("compute_engine") or {}
        if not all(isinstance(instance.get(claim), str) and instance[claim]
                   for claim in ("instance_name", "instance_id", "zone")):
            raise Refused(401, "the identity token names no instance: ask for it with format=full")
        if instance.get("project_id") != self.secrets.project:
            raise Refused(401, "the identity token is of an instance in another project")
        return instance

    def secret_for(self, key: str, token: str) -> dict:
        """The secret's value for the instance the token proves (Refused otherwise)."""
        proven = self.instance_of(token)
        name = proven["instance_name"]
        found = self.secrets.read(key)
        if found is None:
            raise Refused(404, f"no machine secret {key}")
        refused = f"instance {name} may not read the machine secret {key}"
        wanted = found.owner
        if not wanted:
            raise Refused(403, f"{refused}: the secret names no cluster or server")
        try:
            instance = self.instances(proven["zone"], name)
        except MachinesError as error:
            raise Refused(503, f"instance {name} could not be read: {error}") from None
        if instance is None:
            raise Refused(403, f"{refused}: Compute has no such instance in {proven['zone']}")
        if str(instance.get("id")) != proven["instance_id"]:  # the name reused since the token was issued
            raise Refused(403, f"{refused}: the token is of an earlier instance of that name")
        labels = instance.get("labels") or {}
        if any(labels.get(label) != value for label, value in wanted.items()):
            raise Refused(403, f"{refused}: its labels do not name the secret's {', '.join(sorted(wanted))}")
        return found.values


def add_machine_secret_routes(routes: web.RouteTableDef, prefix: str, broker_of) -> None:
    """`broker_of()`: the gateway's MachineSecretBroker, or None (a cloud without one: 404)."""

    @routes.get(prefix + ROUTE)
    async def machine_secret(request: web.Request) -> web.Response:
        broker, key = broker_of(), request.match_info["key"]
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            if broker is None or not _KEY.fullmatch(key):
                raise Refused(404, f"no machine secret {key}")
            if scheme.lower() != "bearer" or not token.strip():
                raise Refused(401, "an instance identity token is required (Authorization: Bearer)")
            values = await asyncio.get_running_loop().run_in_executor(
                _threads, broker.secret_for, key, token.strip())
        except Refused as refused:
            headers = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else None
            return web.json_response({"message": refused.reason}, status=refused.status, headers=headers)
        return web.json_response(values, headers={"Cache-Control": "no-store"})

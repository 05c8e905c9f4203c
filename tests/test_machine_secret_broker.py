"""Machine secrets on GCP and the broker that hands them out, against real parts: the Secret
Manager fake (validated against its discovery document) through google-cloud-secret-manager,
the broker's routes in a real aiohttp server, google-auth verifying tokens that the
simulator's metadata server code issues (gce_metadata.answer) signed with the simulator's
test key, whose certificates a loopback server serves as Google serves its own (and counts
its fetches: the broker keeps them for their Cache-Control max-age).
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from google.api_core.exceptions import BadRequest
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.cloud.gcp_machine_secrets import ALLOWED, GcpMachineSecrets
from deploy.gateway.machine_secret_broker import MachineSecretBroker, add_machine_secret_routes
from deploy.gateway.signing_certs import REFETCH_AFTER, freshness
from modules import naming
from tests.support.gcp.secret_manager import running_secret_manager
from tests.support.simulator.gce_identity import IdentityIssuer
from tests.support.simulator.gce_metadata import GceMetadata, answer

PROJECT = "oceanlab-prod"
AUDIENCE = naming.machine_secrets_audience("oceanlab")
PREFIX = "/services/dask-gateway/api/graticule/v1"
VALUES = {"env": {"DASK_GATEWAY_API_TOKEN": "s3cr3t"}, "files": {"dask.pem": "KEY", "dask.crt": "CERT"}}


@pytest.fixture
def secret_manager():
    with running_secret_manager(PROJECT) as fake:
        yield fake


@pytest.fixture
def secrets(secret_manager) -> GcpMachineSecrets:
    client = secretmanager.SecretManagerServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": secret_manager.url})
    return GcpMachineSecrets(PROJECT, "oceanlab", client=client)


@pytest.fixture
def issuer():
    with IdentityIssuer() as running:
        yield running


def _metadata_token(issuer: IdentityIssuer, name: str, audience: str = AUDIENCE, full: bool = True) -> str:
    """What `instance/service-accounts/default/identity` answers on the instance `name`."""
    account = {"email": "oceanlab-w-none@oceanlab-prod.iam.gserviceaccount.com", "aliases": ["default"]}
    instance = {"id": str(abs(hash(name)) % 10**19), "name": name, "zone": "us-central1-a",
                "service-accounts": {"default": account}}

    def identity(aud: str, email: str, want_full: bool) -> str:
        described = {**instance, "project_id": PROJECT}
        return issuer.token(aud, email=email, instance=described if want_full else None)

    metadata = GceMetadata(instance, {"project-id": PROJECT}, dict, identity)
    query = f"audience={audience}" + ("&format=full" if full else "")
    status, _, body = answer(metadata, {"Metadata-Flavor": "Google"},
                             f"/computeMetadata/v1/instance/service-accounts/default/identity?{query}")
    assert status == 200, body
    return body.decode()


@asynccontextmanager
async def _broker_server(broker: MachineSecretBroker | None):
    routes = web.RouteTableDef()
    add_machine_secret_routes(routes, PREFIX, lambda: broker)
    app = web.Application()
    app.router.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}{PREFIX}"
    finally:
        await runner.cleanup()


def _ask(broker: MachineSecretBroker | None, key: str, token: str | None) -> tuple[int, dict]:
    async def scenario() -> tuple[int, dict]:
        async with _broker_server(broker) as url, aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
            async with session.get(f"{url}/machine-secret/{key}", headers=headers) as response:
                return response.status, await response.json(content_type=None)
    return asyncio.run(scenario())


def test_put_allow_read_delete(secrets, secret_manager):
    name = secrets.put("cluster-abc", VALUES, tags={"cluster": "abc", "user": "Alice"})
    assert name == "projects/oceanlab-prod/secrets/graticule-oceanlab-machines-cluster-abc"
    stored = secret_manager.secrets["graticule-oceanlab-machines-cluster-abc"]
    assert stored["labels"] == {"platform": "oceanlab", "cluster": "abc", "user": "alice"}
    assert stored["annotations"] == {ALLOWED: ""}
    found = secrets.read("cluster-abc")
    assert found.values == VALUES and found.allowed == frozenset()

    secrets.allow("cluster-abc", ["oceanlab-abc-w-0002", "oceanlab-abc-s", "oceanlab-abc-s"])
    assert secrets.read("cluster-abc").allowed == {"oceanlab-abc-s", "oceanlab-abc-w-0002"}
    assert secret_manager.secrets["graticule-oceanlab-machines-cluster-abc"]["annotations"] == {
        ALLOWED: "oceanlab-abc-s,oceanlab-abc-w-0002"}

    with pytest.raises(BadRequest):  # the fake changes only what Secret Manager lets a patch change
        secrets.client.update_secret(secret={"name": name, "replication": {"automatic": {}}},
                                     update_mask={"paths": ["replication"]})

    secrets.put("cluster-abc", {"env": {"X": "new"}})  # a new value; nobody allowed until allow again
    again = secrets.read("cluster-abc")
    assert again.values == {"env": {"X": "new"}} and again.allowed == frozenset()

    secrets.delete("cluster-abc")
    assert secret_manager.secrets == {}
    assert secrets.read("cluster-abc") is None
    secrets.delete("cluster-abc")  # idempotent


def test_broker_answers_only_the_allowed_instances(secrets, issuer):
    secrets.put("cluster-abc", VALUES, tags={"cluster": "abc", "user": "alice"})
    secrets.allow("cluster-abc", ["oceanlab-abc-s", "oceanlab-abc-w-0001"])
    secrets.put("cluster-bob", {"env": {"BOB": "1"}}, tags={"cluster": "bob", "user": "bob"})
    secrets.allow("cluster-bob", ["oceanlab-bob-w-0001"])
    clock = Clock()
    broker = MachineSecretBroker(secrets, AUDIENCE, issuer.certs_url, clock=clock)

    alice_worker = _metadata_token(issuer, "oceanlab-abc-w-0001")
    assert _ask(broker, "cluster-abc", alice_worker) == (200, VALUES)

    bob_worker = _metadata_token(issuer, "oceanlab-bob-w-0001")  # valid, but not one of alice's machines
    status, body = _ask(broker, "cluster-abc", bob_worker)
    assert status == 403 and "oceanlab-bob-w-0001" in body["message"]
    assert _ask(broker, "cluster-bob", bob_worker) == (200, {"env": {"BOB": "1"}})

    status, body = _ask(broker, "cluster-abc", _metadata_token(issuer, "oceanlab-abc-w-0001", audience="other"))
    assert status == 401 and "audience" in body["message"].lower()
    expired = issuer.token(AUDIENCE, email="w@x", issued_at=time.time() - 7200, instance={
        "id": "1", "name": "oceanlab-abc-w-0001", "zone": "us-central1-a", "project_id": PROJECT})
    status, body = _ask(broker, "cluster-abc", expired)
    assert status == 401 and "expired" in body["message"].lower()
    status, body = _ask(broker, "cluster-abc", _metadata_token(issuer, "oceanlab-abc-w-0001", full=False))
    assert status == 401 and "format=full" in body["message"]
    other_project = issuer.token(AUDIENCE, email="w@x", instance={
        "id": "1", "name": "oceanlab-abc-w-0001", "zone": "us-central1-a", "project_id": "someone-else"})
    assert _ask(broker, "cluster-abc", other_project)[0] == 401
    with IdentityIssuer() as stranger:  # signed by a key Google's certificates do not hold
        forged = _metadata_token(stranger, "oceanlab-abc-w-0001")
    assert _ask(broker, "cluster-abc", forged)[0] == 401
    assert _ask(broker, "cluster-abc", None)[0] == 401

    assert _ask(broker, "cluster-nope", alice_worker)[0] == 404
    assert _ask(None, "cluster-abc", alice_worker)[0] == 404  # a gateway without a broker (aws)

    issuer.close()  # the certificates unreachable: the kept ones serve until they expire, then 503
    assert _ask(broker, "cluster-abc", alice_worker)[0] == 200
    clock.now += issuer.max_age
    status, body = _ask(broker, "cluster-abc", alice_worker)
    assert status == 503 and "certificates" in body["message"]


class Clock:
    """The certificates' cache's clock, moved by the test (no test waits for time to pass)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ask_all(broker: MachineSecretBroker, key: str, tokens: list[str]) -> list[int]:
    """Every token's request at once, as a cluster's machines booting together ask."""
    async def scenario() -> list[int]:
        async with _broker_server(broker) as url, aiohttp.ClientSession() as session:
            async def one(token: str) -> int:
                async with session.get(f"{url}/machine-secret/{key}",
                                       headers={"Authorization": f"Bearer {token}"}) as response:
                    return response.status
            return list(await asyncio.gather(*(one(token) for token in tokens)))
    return asyncio.run(scenario())


def test_broker_fetches_the_certificates_once_per_their_max_age(secrets, issuer):
    names = [f"oceanlab-abc-w-{i:04d}" for i in range(1, 41)]
    secrets.put("cluster-abc", VALUES, tags={"cluster": "abc", "user": "alice"})
    secrets.allow("cluster-abc", names)
    clock = Clock()
    broker = MachineSecretBroker(secrets, AUDIENCE, issuer.certs_url, clock=clock)
    tokens = [_metadata_token(issuer, name) for name in names]

    assert _ask_all(broker, "cluster-abc", tokens) == [200] * len(tokens)
    assert issuer.fetches == 1  # 40 machines at once: one fetch
    clock.now += issuer.max_age - 1
    assert _ask(broker, "cluster-abc", tokens[0])[0] == 200 and issuer.fetches == 1
    clock.now += 1  # max-age reached: fetched again, once
    assert _ask_all(broker, "cluster-abc", tokens[:5]) == [200] * 5 and issuer.fetches == 2

    # A key the kept certificates lack: fetched early, but no more than once per REFETCH_AFTER
    with IdentityIssuer() as stranger:
        forged = _metadata_token(stranger, names[0])
    assert _ask(broker, "cluster-abc", forged)[0] == 401 and issuer.fetches == 2  # fetched just now
    clock.now += REFETCH_AFTER
    assert [_ask(broker, "cluster-abc", forged)[0] for _ in range(3)] == [401] * 3
    assert issuer.fetches == 3


def test_broker_keeps_no_certificates_their_response_says_not_to(secrets):
    secrets.put("cluster-abc", VALUES, tags={"cluster": "abc", "user": "alice"})
    secrets.allow("cluster-abc", ["oceanlab-abc-s"])
    with IdentityIssuer(max_age=0) as issuer:
        broker = MachineSecretBroker(secrets, AUDIENCE, issuer.certs_url, clock=Clock())
        token = _metadata_token(issuer, "oceanlab-abc-s")
        assert [_ask(broker, "cluster-abc", token)[0] for _ in range(3)] == [200] * 3
        assert issuer.fetches == 3


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"Cache-Control": "public, max-age=19602, must-revalidate, no-transform"}, 19602),  # Google's
    ({"Cache-Control": "public, max-age=19602", "Age": "602"}, 19000),  # kept by a cache on the way
    ({"Cache-Control": "max-age=60", "Age": "90"}, 0),
    ({"Cache-Control": "no-store, max-age=60"}, 0),
    ({"Cache-Control": "no-cache"}, 0),
    ({"Cache-Control": "public, s-maxage=60"}, 0),  # a shared cache's, not ours
    ({}, 0),
])
def test_freshness_of_a_certificates_response(headers, seconds):
    assert freshness(headers) == seconds


def test_metadata_server_identity_needs_an_audience(issuer):
    metadata = GceMetadata({"service-accounts": {"default": {"email": "a@b"}}}, {}, dict,
                           lambda aud, email, full: issuer.token(aud, email=email))
    status, _, body = answer(metadata, {"Metadata-Flavor": "Google"},
                             "/computeMetadata/v1/instance/service-accounts/default/identity")
    assert status == 400 and b"audience" in body
    status, _, _ = answer(metadata, {}, "/computeMetadata/v1/instance/service-accounts/default/identity?audience=x")
    assert status == 403  # without Metadata-Flavor, as Google's
    status, _, _ = answer(metadata, {"Metadata-Flavor": "Google"},
                          "/computeMetadata/v1/instance/service-accounts/nobody@x/identity?audience=x")
    assert status == 404
    status, _, body = answer(metadata, {"Metadata-Flavor": "Google"},
                             "/computeMetadata/v1/instance/service-accounts/default/identity?audience=x")
    header, claims = (json.loads(_b64(part)) for part in body.decode().split(".")[:2])
    assert header["alg"] == "RS256" and header["kid"] == issuer.kid
    assert claims["aud"] == "x" and claims["iss"] == "https://accounts.google.com" and "google" not in claims


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_only_the_hub_may_touch_machine_secrets_in_the_rendered_iam():
    from render.build import render
    from render.validate import validate_text
    from tests.support.gcp_hub import platform_yaml

    main = json.loads(render(validate_text(platform_yaml()))["terraform/gcp/main.tf.json"])
    resources = main["resource"]
    roles = {f"${{google_project_iam_custom_role.{key}.name}}": role["permissions"]
             for key, role in resources["google_project_iam_custom_role"].items()}
    hub = "serviceAccount:${google_service_account.hub.email}"
    secret_grants = []
    for kind in ("google_project_iam_member", "google_secret_manager_secret_iam_member",
                 "google_service_account_iam_member", "google_storage_bucket_iam_member"):
        for grant in resources.get(kind, {}).values():
            permissions = roles.get(grant["role"], [grant["role"]])
            if any("secretmanager" in p for p in permissions):
                secret_grants.append(grant)
    assert secret_grants and all(grant["member"] == hub for grant in secret_grants)  # machines: none at all
    prefix = naming.gcp_machine_secret_prefix("oceanlab")
    reads = [g for g in secret_grants if any("versions.access" in p for p in roles.get(g["role"], []))]
    assert len(reads) == 1 and f'.startsWith("{prefix}")' in reads[0]["condition"]["expression"]

"""Machine secrets on GCP and the broker that hands them out, against real parts: the Secret
Manager fake (validated against its discovery document) through google-cloud-secret-manager,
the fake Compute API (validated against Compute's) holding the instances the machines layer
launched with their labels, the broker's routes in a real aiohttp server, google-auth
verifying tokens that the simulator's metadata server code issues (gce_metadata.answer)
signed with the simulator's test key, whose certificates a loopback server serves as Google
serves its own (and counts its fetches: the broker keeps them for their Cache-Control max-age).
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.cloud.gcp import GCPMachines
from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets
from deploy.cloud.machines import MachineSpec
from deploy.gateway.machine_secret_broker import MachineSecretBroker, add_machine_secret_routes
from deploy.gateway.signing_certs import REFETCH_AFTER, freshness
from modules import naming
from tests.support.gce.clients import client, wait
from tests.support.gce.server import running_fake_compute
from tests.support.gce.setup import network, template
from tests.support.gcp.secret_manager import running_secret_manager
from tests.support.simulator.gce_identity import IdentityIssuer
from tests.support.simulator.gce_metadata import GceMetadata, answer

PROJECT = "oceanlab-prod"
ZONE = "us-central1-a"
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


class Fleet:
    """Instances launched as the gateway and the hub launch them (labels from their tags)."""

    def __init__(self, compute) -> None:
        self.compute = compute
        network(compute, {"us-central1": "10.20.0.0/16"})
        self.template = template(compute, "oceanlab-small", "e2-standard-2")
        self.machines = GCPMachines(PROJECT, [ZONE], client_options=compute.client_options(),
                                    credentials=AnonymousCredentials())

    def launch(self, name: str, count: int = 1, **tags: str) -> list[dict]:
        spec = MachineSpec(name=name, template=self.template, tags={"platform": "oceanlab", **tags}, count=count)
        launched = self.machines.launch_batch(spec) if count > 1 else [self.machines.launch(spec)]
        held = {instance["name"]: instance for instance in self.compute.instances(ZONE)}
        return [held[machine.id] for machine in launched]

    def relaunch(self, name: str, **tags: str) -> dict:
        """An instance of a name used before (the machines layer's retry-safe request id would
        replay the first launch): inserted as a new request."""
        from google.cloud import compute_v1

        wait(self.compute, client(self.compute, "InstancesClient").insert(request=compute_v1.InsertInstanceRequest(
            project=PROJECT, zone=ZONE, source_instance_template=self.template,
            instance_resource=compute_v1.Instance(name=name, labels={"platform": "oceanlab", **tags}))))
        return self.machines.instance(ZONE, name)


@pytest.fixture
def fleet():
    with running_fake_compute(PROJECT) as compute:
        yield Fleet(compute)


def _broker(secrets: GcpMachineSecrets, issuer: IdentityIssuer, fleet: Fleet, clock=None) -> MachineSecretBroker:
    return MachineSecretBroker(secrets, AUDIENCE, issuer.certs_url, instances=fleet.machines.instance,
                               clock=clock or Clock())


def _metadata_token(issuer: IdentityIssuer, instance: dict, audience: str = AUDIENCE, full: bool = True) -> str:
    """What `instance/service-accounts/default/identity` answers on `instance` (Compute's JSON)."""
    account = {"email": "oceanlab-w-none@oceanlab-prod.iam.gserviceaccount.com", "aliases": ["default"]}
    zone = instance["zone"].rsplit("/", 1)[-1]
    described = {"id": str(instance["id"]), "name": instance["name"], "zone": f"projects/1/zones/{zone}",
                 "service-accounts": {"default": account}}

    def identity(aud: str, email: str, want_full: bool) -> str:
        claims = {"id": described["id"], "name": described["name"], "zone": zone, "project_id": PROJECT}
        return issuer.token(aud, email=email, instance=claims if want_full else None)

    metadata = GceMetadata(described, {"project-id": PROJECT}, dict, identity)
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


class Clock:
    """The certificates' cache's clock, moved by the test (no test waits for time to pass)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_put_read_delete(secrets, secret_manager):
    name = secrets.put("cluster-abc", VALUES, tags={"cluster": "abc", "user": "Alice"})
    assert name == "projects/oceanlab-prod/secrets/graticule-oceanlab-machines-cluster-abc"
    stored = secret_manager.secrets["graticule-oceanlab-machines-cluster-abc"]
    assert stored["labels"] == {"platform": "oceanlab", "cluster": "abc", "user": "alice"}
    assert not stored.get("annotations")  # nothing per machine: no cap on a cluster's size
    found = secrets.read("cluster-abc")
    assert found.values == VALUES and found.owner == {"platform": "oceanlab", "cluster": "abc"}

    secrets.allow("cluster-abc", [f"oceanlab-abc-w-{i:04d}" for i in range(2000)])  # nothing to write on GCP
    assert secret_manager.secrets["graticule-oceanlab-machines-cluster-abc"] == stored

    secrets.put("cluster-abc", {"env": {"X": "new"}}, tags={"cluster": "abc", "user": "carol"})  # a new value
    again = secrets.read("cluster-abc")
    assert again.values == {"env": {"X": "new"}} and again.labels["user"] == "carol"

    secrets.put("server-bob", {"env": {}}, tags={"user": "bob", "server": "bob/lab"})
    assert secrets.read("server-bob").owner == {"platform": "oceanlab", "server": "bob-lab"}
    secrets.put("ownerless", {"env": {}})
    assert secrets.read("ownerless").owner == {}

    secrets.delete("cluster-abc")
    assert set(secret_manager.secrets) == {"graticule-oceanlab-machines-server-bob",
                                           "graticule-oceanlab-machines-ownerless"}
    assert secrets.read("cluster-abc") is None
    secrets.delete("cluster-abc")  # idempotent


def test_broker_answers_only_the_instances_labelled_with_the_secrets_owner(secrets, issuer, fleet):
    secrets.put("cluster-abc", VALUES, tags={"cluster": "abc", "user": "alice"})
    secrets.put("cluster-bob", {"env": {"BOB": "1"}}, tags={"cluster": "bob", "user": "bob"})
    secrets.put("server-alice", {"env": {"NB": "1"}}, tags={"user": "alice", "server": "alice"})
    secrets.put("ownerless", {"env": {}})
    alice_s, = fleet.launch("oceanlab-abc-s", cluster="abc", role="scheduler", user="alice")
    bob_w, = fleet.launch("oceanlab-bob-w", cluster="bob", role="worker", user="bob")
    notebook, = fleet.launch("oceanlab-nb-alice-1a2b3c", role="notebook", user="alice", server="alice")
    stranger, = fleet.launch("oceanlab-odd", user="alice")  # the platform's, but no cluster's
    clock = Clock()
    broker = _broker(secrets, issuer, fleet, clock)

    alice_token = _metadata_token(issuer, alice_s)
    assert _ask(broker, "cluster-abc", alice_token) == (200, VALUES)
    bob_token = _metadata_token(issuer, bob_w)  # valid, but not one of alice's cluster's machines
    status, body = _ask(broker, "cluster-abc", bob_token)
    assert status == 403 and "oceanlab-bob-w" in body["message"] and "cluster" in body["message"]
    assert _ask(broker, "cluster-bob", bob_token) == (200, {"env": {"BOB": "1"}})
    assert _ask(broker, "server-alice", _metadata_token(issuer, notebook)) == (200, {"env": {"NB": "1"}})
    assert _ask(broker, "server-alice", alice_token)[0] == 403  # alice's, but her cluster's, not her server
    assert _ask(broker, "cluster-abc", _metadata_token(issuer, stranger))[0] == 403
    assert _ask(broker, "ownerless", alice_token)[0] == 403

    status, body = _ask(broker, "cluster-abc", _metadata_token(issuer, alice_s, audience="other"))
    assert status == 401 and "audience" in body["message"].lower()
    expired = issuer.token(AUDIENCE, email="w@x", issued_at=time.time() - 7200, instance={
        "id": alice_s["id"], "name": alice_s["name"], "zone": ZONE, "project_id": PROJECT})
    status, body = _ask(broker, "cluster-abc", expired)
    assert status == 401 and "expired" in body["message"].lower()
    status, body = _ask(broker, "cluster-abc", _metadata_token(issuer, alice_s, full=False))
    assert status == 401 and "format=full" in body["message"]
    other_project = issuer.token(AUDIENCE, email="w@x", instance={
        "id": alice_s["id"], "name": alice_s["name"], "zone": ZONE, "project_id": "someone-else"})
    assert _ask(broker, "cluster-abc", other_project)[0] == 401
    with IdentityIssuer() as forger:  # signed by a key Google's certificates do not hold
        forged = _metadata_token(forger, alice_s)
    assert _ask(broker, "cluster-abc", forged)[0] == 401
    assert _ask(broker, "cluster-abc", None)[0] == 401

    assert _ask(broker, "cluster-nope", alice_token)[0] == 404
    assert _ask(None, "cluster-abc", alice_token)[0] == 404  # a gateway without a broker (aws)

    # Its name launched again for bob's cluster: the old token is of another instance
    fleet.machines.terminate([bob_w["name"]])
    status, body = _ask(broker, "cluster-bob", bob_token)
    assert status == 403 and "no such instance" in body["message"]
    again = fleet.relaunch("oceanlab-bob-w", cluster="bob", role="worker", user="bob")
    assert again["id"] != bob_w["id"]
    status, body = _ask(broker, "cluster-bob", bob_token)
    assert status == 403 and "earlier instance" in body["message"]
    assert _ask(broker, "cluster-bob", _metadata_token(issuer, again))[0] == 200

    fleet.compute.fail_next("compute.instances.get", status=403)  # Compute cannot be asked: not a 403 of ours
    status, body = _ask(broker, "cluster-abc", alice_token)
    assert status == 503 and "could not be read" in body["message"]

    issuer.close()  # the certificates unreachable: the kept ones serve until they expire, then 503
    assert _ask(broker, "cluster-abc", alice_token)[0] == 200
    clock.now += issuer.max_age
    status, body = _ask(broker, "cluster-abc", alice_token)
    assert status == 503 and "certificates" in body["message"]


def test_a_cluster_of_500_machines_reads_its_secret(secrets, secret_manager, issuer, fleet):
    """The annotation that listed allowed machines capped a cluster near 300 (16 KiB)."""
    secrets.put("cluster-big", VALUES, tags={"cluster": "big", "user": "alice"})
    machines = [instance for batch in range(5)  # as the gateway batches them: 100 per bulkInsert
                for instance in fleet.launch(f"oceanlab-big-w{batch}", count=100, cluster="big", role="worker",
                                             user="alice")]
    names = [m["name"] for m in machines]
    assert len(set(names)) == 500
    secrets.allow("cluster-big", names)
    other, = fleet.launch("oceanlab-small-w", cluster="small", role="worker", user="alice")
    broker = _broker(secrets, issuer, fleet)

    assert _ask_all(broker, "cluster-big", [_metadata_token(issuer, m) for m in machines]) == [200] * 500
    assert _ask(broker, "cluster-big", _metadata_token(issuer, other))[0] == 403
    assert issuer.fetches == 1
    stored = secret_manager.secrets["graticule-oceanlab-machines-cluster-big"]
    assert len(json.dumps(stored.get("annotations") or {})) < 100


def test_broker_fetches_the_certificates_once_per_their_max_age(secrets, issuer, fleet):
    secrets.put("cluster-abc", VALUES, tags={"cluster": "abc", "user": "alice"})
    machines = fleet.launch("oceanlab-abc-w", count=40, cluster="abc", role="worker", user="alice")
    clock = Clock()
    broker = _broker(secrets, issuer, fleet, clock)
    tokens = [_metadata_token(issuer, m) for m in machines]

    assert _ask_all(broker, "cluster-abc", tokens) == [200] * len(tokens)
    assert issuer.fetches == 1  # 40 machines at once: one fetch
    clock.now += issuer.max_age - 1
    assert _ask(broker, "cluster-abc", tokens[0])[0] == 200 and issuer.fetches == 1
    clock.now += 1  # max-age reached: fetched again, once
    assert _ask_all(broker, "cluster-abc", tokens[:5]) == [200] * 5 and issuer.fetches == 2

    # A key the kept certificates lack: fetched early, but no more than once per REFETCH_AFTER
    with IdentityIssuer() as forger:
        forged = _metadata_token(forger, machines[0])
    assert _ask(broker, "cluster-abc", forged)[0] == 401 and issuer.fetches == 2  # fetched just now
    clock.now += REFETCH_AFTER
    assert [_ask(broker, "cluster-abc", forged)[0] for _ in range(3)] == [401] * 3
    assert issuer.fetches == 3


def test_broker_keeps_no_certificates_their_response_says_not_to(secrets, fleet):
    secrets.put("cluster-abc", VALUES, tags={"cluster": "abc", "user": "alice"})
    scheduler, = fleet.launch("oceanlab-abc-s", cluster="abc", role="scheduler", user="alice")
    with IdentityIssuer(max_age=0) as issuer:
        broker = _broker(secrets, issuer, fleet)
        token = _metadata_token(issuer, scheduler)
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


def test_no_machine_may_label_or_launch_instances_in_the_rendered_iam():
    """The broker trusts an instance's labels: only the hub may set them, or launch instances
    with them, or act as the hub; the machines' accounts hold only their runtime and bucket roles."""
    from modules.gcp.identity import RUNTIME_ROLES
    from modules.gcp.storage import ROLES as BUCKET_ROLES
    from render.build import render
    from render.validate import validate_text
    from tests.support.gcp_hub import platform_yaml

    main = json.loads(render(validate_text(platform_yaml()))["terraform/gcp/main.tf.json"])
    resources = main["resource"]
    roles = {f"${{google_project_iam_custom_role.{key}.name}}": role["permissions"]
             for key, role in resources["google_project_iam_custom_role"].items()}
    hub = "serviceAccount:${google_service_account.hub.email}"
    workers = {f"serviceAccount:${{google_service_account.{key}.email}}"
               for key in resources["google_service_account"] if key != "hub"}
    assert workers and hub not in workers
    granted: dict[str, set[str]] = {}
    for kind, grants in resources.items():
        if kind.endswith(("_iam_member", "_iam_binding")):
            for grant in grants.values():
                for member in [grant.get("member"), *grant.get("members", [])]:
                    if member:
                        granted.setdefault(member, set()).update(roles.get(grant["role"], [grant["role"]]))
    for kind in ("google_project_iam_policy", "google_service_account_iam_policy"):
        assert kind not in resources  # a whole policy could hand anything to anyone
    labelling = {"compute.instances.setLabels", "compute.instances.create", "compute.instances.setMetadata"}
    assert labelling <= granted[hub]
    allowed = set(RUNTIME_ROLES) | set(BUCKET_ROLES.values())
    for member in workers:
        assert granted.get(member, set()) <= allowed, member  # no custom role, no Compute role
        assert not any(p.startswith("compute.") for p in granted.get(member, set()))
    # nobody may act as the hub's account (impersonation would carry its labelling rights)
    hub_account = "${google_service_account.hub.name}"
    assert not [g for g in resources.get("google_service_account_iam_member", {}).values()
                if g["service_account_id"] == hub_account]

"""What the machine-secret broker's tests share (tests/test_machine_secret_broker.py,
tests/test_broker_certificates.py): the platform's machine secrets in the Secret Manager
fake, a `Fleet` of instances in the fake Compute API launched as the gateway launches them,
identity tokens as an instance's metadata server answers them, and the
broker's routes in a real aiohttp server to ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager

import aiohttp
from aiohttp import web
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.cloud.gcp import GCPMachines
from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets
from deploy.cloud.machines import MachineSpec
from deploy.gateway.machine_secret_broker import MachineSecretBroker, add_machine_secret_routes
from modules import naming
from tests.support.gce.clients import client, wait
from tests.support.gce.server import running_fake_compute
from tests.support.gce.setup import network, template
from tests.support.simulator.gce_identity import IdentityIssuer
from tests.support.simulator.gce_metadata import GceMetadata, answer

PROJECT = "oceanlab-prod"
ZONE = "us-central1-a"
AUDIENCE = naming.machine_secrets_audience("oceanlab")
PREFIX = "/services/dask-gateway/api/graticule/v1"
VALUES = {"env": {"DASK_GATEWAY_API_TOKEN": "s3cr3t"}, "files": {"dask.pem": "KEY", "dask.crt": "CERT"}}


def machine_secrets(secret_manager) -> GcpMachineSecrets:
    """The platform's machine secrets in the Secret Manager fake."""
    client = secretmanager.SecretManagerServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": secret_manager.url})
    return GcpMachineSecrets(PROJECT, "oceanlab", client=client)


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


@contextmanager
def running_fleet() -> Iterator[Fleet]:
    with running_fake_compute(PROJECT) as compute:
        yield Fleet(compute)


def broker_of(secrets: GcpMachineSecrets, issuer: IdentityIssuer, fleet: Fleet, clock=None) -> MachineSecretBroker:
    return MachineSecretBroker(secrets, AUDIENCE, issuer.certs_url, instances=fleet.machines.instance,
                               clock=clock or Clock())


def metadata_token(issuer: IdentityIssuer, instance: dict, audience: str = AUDIENCE, full: bool = True) -> str:
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
async def broker_server(broker: MachineSecretBroker | None):
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


def ask(broker: MachineSecretBroker | None, key: str, token: str | None) -> tuple[int, dict]:
    async def scenario() -> tuple[int, dict]:
        async with broker_server(broker) as url, aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
            async with session.get(f"{url}/machine-secret/{key}", headers=headers) as response:
                return response.status, await response.json(content_type=None)
    return asyncio.run(scenario())


def ask_all(broker: MachineSecretBroker, key: str, tokens: list[str]) -> list[int]:
    """Every token's request at once, as a cluster's machines booting together ask."""
    async def scenario() -> list[int]:
        async with broker_server(broker) as url, aiohttp.ClientSession() as session:
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

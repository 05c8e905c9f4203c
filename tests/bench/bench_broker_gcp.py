"""Benchmark: a GCP cluster's machines asking the machine-secret broker for their secret all at
once (deploy/gateway/machine_secret_broker.py), with Google's signing certificates kept for
their Cache-Control max-age, against the baseline of fetching them for every request (what
the broker did before; here `max-age=0` makes it so), in the same run.

Real parts as in tests/test_machine_secret_broker.py: the broker's routes in an aiohttp
server, the fake Compute API holding the cluster's instances (the broker reads each one's
labels), the Secret Manager fake, the simulator's identity issuer serving its certificates
on loopback. Loopback hides most of what a fetch costs against Google (a TLS round trip to
www.googleapis.com per request), so the count of fetches matters more than the seconds.

    python -m tests.bench.run broker_gcp
"""

from __future__ import annotations

import asyncio
import time

PROJECT = "oceanlab-prod"
ZONE = "us-central1-a"
MACHINES = 300  # one cluster, past the ~300 the allowed-machines annotation once capped


def _tokens(issuer, instances: list[dict], audience: str) -> list[str]:
    return [issuer.token(audience, email="w@x", instance={
        "id": i["id"], "name": i["name"], "zone": ZONE, "project_id": PROJECT}) for i in instances]


async def _ask_all(broker, key: str, tokens: list[str], concurrency: int = 32) -> list[int]:
    import aiohttp
    from aiohttp import web

    from deploy.gateway.machine_secret_broker import add_machine_secret_routes

    routes = web.RouteTableDef()
    add_machine_secret_routes(routes, "/api/graticule/v1", lambda: broker)
    app = web.Application()
    app.router.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/api/graticule/v1/machine-secret/{key}"
    limit = asyncio.Semaphore(concurrency)  # machines boot together, but not all in one instant
    try:
        async with aiohttp.ClientSession() as session:
            async def one(token: str) -> int:
                async with limit, session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
                    return response.status
            return list(await asyncio.gather(*(one(token) for token in tokens)))
    finally:
        await runner.cleanup()


def main() -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager

    from deploy.cloud.gcp import GCPMachines
    from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets
    from deploy.cloud.machines import MachineSpec
    from deploy.gateway.machine_secret_broker import MachineSecretBroker
    from modules import naming
    from tests.support.gce.server import running_fake_compute
    from tests.support.gce.setup import network, template
    from tests.support.gcp.secret_manager import running_secret_manager
    from tests.support.simulator.gce_identity import IdentityIssuer

    count = MACHINES
    audience = naming.machine_secrets_audience("oceanlab")
    with running_fake_compute(PROJECT) as compute, running_secret_manager(PROJECT) as manager:
        network(compute, {"us-central1": "10.20.0.0/16"})
        path = template(compute, "oceanlab-small", "e2-standard-2")
        machines = GCPMachines(PROJECT, [ZONE], client_options=compute.client_options(),
                               credentials=AnonymousCredentials())
        for batch in range(0, count, 100):  # as the gateway launches them: 100 per bulkInsert
            machines.launch_batch(MachineSpec(name=f"oceanlab-big-w{batch // 100}", template=path,
                                              tags={"platform": "oceanlab", "cluster": "big"},
                                              count=min(100, count - batch)))
        instances = compute.instances(ZONE)
        secrets = GcpMachineSecrets(PROJECT, "oceanlab", client=secretmanager.SecretManagerServiceClient(
            credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": manager.url}))
        secrets.put("cluster-big", {"env": {"TOKEN": "t"}}, tags={"cluster": "big"})
        results = {}
        for label, max_age in (("baseline: fetched per request", 0), ("kept for max-age", 300)):
            with IdentityIssuer(max_age=max_age) as issuer:
                broker = MachineSecretBroker(secrets, audience, issuer.certs_url, instances=machines.instance)
                tokens = _tokens(issuer, instances, audience)
                reads = len(compute.calls("compute.instances.get"))
                start = time.perf_counter()
                statuses = asyncio.run(_ask_all(broker, "cluster-big", tokens))
                seconds = time.perf_counter() - start
                assert statuses == [200] * len(tokens), sorted(set(statuses))
                results[label] = seconds
                print(f"{label:32s} {len(tokens)} machines: {seconds:6.2f} s, {len(tokens) / seconds:6.1f} req/s, "
                      f"certificate fetches {issuer.fetches}, "
                      f"instances.get {len(compute.calls('compute.instances.get')) - reads}", flush=True)
        baseline, kept = results.values()
        print(f"kept / baseline wall time: {kept / baseline:.2f}")

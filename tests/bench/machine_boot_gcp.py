"""Benchmark (b) on GCP (called by bench_cluster_gcp beside AWS's): in the GCE simulator,
instance running (its startup script starts) to worker connected, with a warm wheel cache.

A scheduler instance and a worker instance, launched through the machines layer from an
instance template in the fake Compute API, boot from `deploy.cloud.gcp_machine_boot`
startup scripts: the metadata server's token, the machine secret from the broker (its
routes in an aiohttp server on this machine, reached from the instances through the
simulator's forwarder, verifying the simulator-signed identity tokens), the tiny
environment's wheels (this machine's dask, distributed, dask-gateway; already in the
bucket: gcp-storage-emulator) installed with uv taken out of the hub wheelhouse's wheel.
The phases come from the script's own `graticule-phase` lines.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

PROJECT = "oceanlab-prod"
BROKER_PORT = 90  # where the instances reach the broker, on their router's address
ACCOUNT = "bench-w-none@oceanlab-prod.iam.gserviceaccount.com"


class _Broker:
    """The broker's routes in an aiohttp server of its own thread, on 127.0.0.1."""

    def __init__(self, broker) -> None:
        self.broker, self.url = broker, ""
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-broker")

    def _run(self) -> None:
        from aiohttp import web

        from deploy.gateway.machine_secret_broker import add_machine_secret_routes

        async def start() -> web.AppRunner:
            routes = web.RouteTableDef()
            add_machine_secret_routes(routes, "/api/graticule/v1", lambda: self.broker)
            app = web.Application()
            app.router.add_routes(routes)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
            return runner

        asyncio.set_event_loop(self._loop)
        self._runner = self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())

    def __enter__(self) -> _Broker:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)


def machine_boot(scratch: Path, tiny_wheels, phases_of, wait_for) -> dict:
    """{"total": seconds running -> connected, "phases": {phase: timestamp}} of the worker."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager

    from deploy.cloud.gcp import GCPMachines
    from deploy.cloud.gcp_machine_boot import GcpMachineBoot, gcp_machine_startup_script
    from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets
    from deploy.cloud.machine_boot import PYTHON
    from deploy.cloud.machines import MachineSpec
    from deploy.gateway.machine_secret_broker import MachineSecretBroker
    from deploy.vm import publish
    from deploy.vm.gcp_stores import GcsObjects
    from modules import naming
    from tests.support.gce.server import running_fake_compute
    from tests.support.gce.setup import network, template
    from tests.support.gcp.secret_manager import running_secret_manager
    from tests.support.gcp.storage import running_gcs
    from tests.support.simulator.gce_simulator import GceSimulator

    wheels, source = tiny_wheels(scratch)
    with running_fake_compute(PROJECT) as compute, running_gcs(PROJECT) as gcs, \
            running_secret_manager(PROJECT) as manager, \
            GceSimulator(compute, scratch / "sim", storage=gcs.url, secretmanager=manager.url,
                         poll_interval=0.05) as sim:
        network(compute, {"us-central1": "10.20.0.0/16"})
        path = template(compute, "bench-small", "e2-standard-2")
        bucket = "bench-artifacts"
        gcs.client().create_bucket(bucket)
        artifacts = GcsObjects(bucket, client=gcs.client())
        publish.publish_environment(artifacts, wheels.id, wheels)
        uv = next(source.glob("uv-*.whl"))
        artifacts.put_file(f"wheelhouse/w/{uv.name}", uv)
        artifacts.put("wheelhouse/w/index.json", json.dumps({"files": [uv.name]}).encode())
        artifacts.put("config/current.json", json.dumps({"version": "v", "wheelhouse": "w"}).encode())
        secrets = GcpMachineSecrets(PROJECT, "bench", client=secretmanager.SecretManagerServiceClient(
            credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": manager.url}))
        secrets.put("cluster-bench", {"env": {"BENCH_TOKEN": "t"}, "files": {}}, tags={"cluster": "bench"})
        machines = GCPMachines(PROJECT, ["us-central1-a"], client_options=compute.client_options(),
                               credentials=AnonymousCredentials())
        broker = MachineSecretBroker(secrets, naming.machine_secrets_audience("bench"), sim.identity.certs_url,
                                     instances=machines.instance)
        with _Broker(broker) as served:
            sim.forward(BROKER_PORT, served.url)
            api_url = f"http://10.20.0.1:{BROKER_PORT}/api"  # the subnet's router: the simulator's forwarder

            def boot(name: str, command: list[str]) -> str:
                script = gcp_machine_startup_script(GcpMachineBoot(
                    platform="bench", bucket=bucket, api_url=api_url, secret="cluster-bench", command=command,
                    environment=wheels.id))
                tags = {"platform": "bench", "cluster": "bench"}  # the broker answers the cluster's instances
                return machines.launch(MachineSpec(name=name, template=path, tags=tags, user_data=script,
                                                   instance_profile=ACCOUNT)).id

            boot("bench-s", [PYTHON, "-m", "distributed.cli.dask_scheduler", "--port", "8786", "--no-dashboard"])
            scheduler_box = sim.wait_running("bench-s", timeout=300)
            wait_for(scheduler_box, "Scheduler at:", 600)
            boot("bench-w", [PYTHON, "-m", "distributed.cli.dask_worker", f"tcp://{scheduler_box.ip}:8786",
                             "--no-dashboard", "--nthreads", "1"])
            box = sim.wait_running("bench-w", timeout=300)
            connected = wait_for(box, "Registered to:", 600)
            result = {"total": connected - box.extra["started_at"],
                      "phases": phases_of(box.console_log.read_text(errors="replace"))}
        machines.terminate(["bench-s", "bench-w"])
        deadline = time.monotonic() + 120
        while sim.booted("bench-s") or sim.booted("bench-w"):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        return result

"""A launched GCP machine's startup script (deploy.cloud.gcp_machine_boot), run for real: the
POSIX sh script on this host under a scratch root (`GRATICULE_MACHINE_ROOT`), against the
simulator's metadata server code on 127.0.0.1 (access and identity tokens, signed by the
simulator's test key), Cloud Storage (gcp-storage-emulator) holding the environment's
wheels, and the machine-secret broker's routes in a real aiohttp server over the Secret
Manager fake and the fake Compute API. The machine is refused (403) until Compute shows
its instance with its cluster's labels, then writes the secret's files 0600, exports its
environment, installs the environment with uv (offline, hashes required) and execs the
command with the environment's Python and its machine id.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from pathlib import Path

import pytest
from aiohttp import web
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.cloud.gcp import GCPMachines
from deploy.cloud.gcp_machine_boot import GcpMachineBoot, gcp_machine_startup_script
from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets
from deploy.cloud.machine_boot import ENVS_DIR, PYTHON, WORKDIR
from deploy.cloud.machines import MachineSpec
from deploy.gateway.machine_secret_broker import MachineSecretBroker, add_machine_secret_routes
from deploy.vm import publish
from deploy.vm.gcp_stores import GcsObjects
from modules import naming
from tests.support.gce.server import running_fake_compute
from tests.support.gce.setup import network, template
from tests.support.gcp.secret_manager import running_secret_manager
from tests.support.gcp.storage import running_gcs
from tests.support.simulator.gce_identity import IdentityIssuer
from tests.support.simulator.gce_metadata import GceMetadata, GceMetadataServer
from tests.test_machine_boot import _environment

PROJECT = "oceanlab-prod"
BUCKET = "oceanlab-artifacts-oceanlab-prod"
NAME = "oceanlab-abc-w-0001"
ZONE = "us-central1-a"
PROBE = (
    "import os, sys, six; "
    "print('python', sys.executable); print('six', six.__file__); "
    "print('token', os.environ['DASK_GATEWAY_API_TOKEN']); print('plain', os.environ['PLAIN']); "
    "print('machine', os.environ['GRATICULE_MACHINE_ID']); print('key', open('dask.pem').read())"
)


@pytest.fixture
def google(tmp_path):
    """(metadata server URL, endpoints file, storage, secrets, issuer, machines) for one instance
    named NAME, which `launch` makes in the fake Compute API."""
    with running_gcs(PROJECT) as gcs, running_secret_manager(PROJECT) as manager, IdentityIssuer() as issuer, \
            running_fake_compute(PROJECT) as compute:
        network(compute, {"us-central1": "10.20.0.0/16"})
        path = template(compute, "oceanlab-small", "e2-standard-2")
        machines = GCPMachines(PROJECT, [ZONE], client_options=compute.client_options(),
                               credentials=AnonymousCredentials())
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        account = {"email": "oceanlab-w-none@oceanlab-prod.iam.gserviceaccount.com", "aliases": ["default"]}

        def identity(aud: str, email: str, full: bool) -> str:
            held = {i["name"]: i["id"] for i in compute.instances(ZONE)}
            described = {"id": held.get(NAME, "4321"), "name": NAME, "zone": ZONE, "project_id": PROJECT}
            return issuer.token(aud, email=email, instance=described if full else None)

        metadata = GceMetadata({"id": "4321", "name": NAME, "service-accounts": {"default": account}},
                               {"project-id": PROJECT}, dict, identity)
        server = GceMetadataServer(listener, metadata).start()

        def launch(cluster: str) -> None:
            machines.launch(MachineSpec(name=NAME, template=path, tags={"platform": "oceanlab", "cluster": cluster}))

        endpoints = tmp_path / "endpoints.json"
        endpoints.write_text(json.dumps({"storage": gcs.url}))
        client = secretmanager.SecretManagerServiceClient(
            credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": manager.url})
        try:
            yield {"metadata": f"http://127.0.0.1:{listener.getsockname()[1]}", "endpoints": endpoints, "gcs": gcs,
                   "secrets": GcpMachineSecrets(PROJECT, "oceanlab", client=client), "issuer": issuer,
                   "machines": machines, "launch": launch}
        finally:
            server.stop()


async def _boot(google, script: Path, root: Path, allow_after: float | None) -> tuple[int, str, str]:
    """Run the script with the broker serving; its instance, labelled for cluster abc, shown by
    Compute `allow_after` seconds in (till then the broker cannot tell it is one of the cluster's)."""
    secrets: GcpMachineSecrets = google["secrets"]
    broker = MachineSecretBroker(secrets, naming.machine_secrets_audience("oceanlab"), google["issuer"].certs_url,
                                 instances=google["machines"].instance)
    routes = web.RouteTableDef()
    add_machine_secret_routes(routes, "/api/graticule/v1", lambda: broker)
    app = web.Application()
    app.router.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", BROKER_PORT)
    await site.start()
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "GRATICULE_MACHINE_ROOT": str(root),
           "GRATICULE_IMDS_URL": google["metadata"], "GRATICULE_GOOGLE_ENDPOINTS": str(google["endpoints"])}
    allowing = None
    if allow_after is not None:
        async def allow() -> None:
            await asyncio.sleep(allow_after)
            await asyncio.to_thread(google["launch"], "abc")
        allowing = asyncio.ensure_future(allow())
    try:
        process = await asyncio.create_subprocess_exec("sh", str(script), env=env, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(process.communicate(), 300)
        except BaseException:
            process.kill()
            await process.wait()
            raise
    finally:
        if allowing is not None:
            allowing.cancel()
        await runner.cleanup()
    return process.returncode, out.decode(), err.decode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


BROKER_PORT = _free_port()
API_URL = f"http://127.0.0.1:{BROKER_PORT}/api"


def test_the_script_gets_its_secret_from_the_broker_installs_the_environment_and_runs(tmp_path, google):
    bucket = google["gcs"].client().create_bucket(BUCKET)
    key, wheels = _environment(tmp_path)
    artifacts = GcsObjects(BUCKET, client=google["gcs"].client())
    assert publish.publish_environment(artifacts, key, wheels) == 1
    secrets: GcpMachineSecrets = google["secrets"]
    secrets.put("cluster-abc", {"env": {"DASK_GATEWAY_API_TOKEN": "tok-123"}, "files": {"dask.pem": "PRIVATE KEY"}},
                tags={"cluster": "abc"})

    boot = GcpMachineBoot(platform="oceanlab", bucket=BUCKET, api_url=API_URL, secret="cluster-abc",
                          command=[PYTHON, "-c", PROBE], environment=key, env={"PLAIN": "not a secret"})
    text = gcp_machine_startup_script(boot)
    assert text == gcp_machine_startup_script(boot) and text.startswith("#!/bin/sh\n")
    assert "tok-123" not in text and "PRIVATE" not in text
    script = tmp_path / "startup-script.sh"
    script.write_text(text)
    root = tmp_path / "root"

    code, out, err = asyncio.run(_boot(google, script, root, allow_after=2.0))
    assert code == 0, out + err
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    python = f"{root}{ENVS_DIR}/{key}/bin/python"
    assert lines["python"] == python
    assert lines["six"].startswith(f"{root}{ENVS_DIR}/{key}/")  # from the environment, not this host's
    assert (lines["token"], lines["plain"], lines["key"]) == ("tok-123", "not a secret", "PRIVATE KEY")
    assert lines["machine"] == NAME
    assert stat.S_IMODE((root / WORKDIR.lstrip("/") / "dask.pem").stat().st_mode) == 0o600
    assert "graticule-phase environment-install" in out
    left = {path.name for path in (root / "run" / "graticule-machine").iterdir()}
    assert not left & {"secret.json", "env.sh", "token.json", "authorization", "identity", "identity.header"}

    bucket.blob(f"environments/{key}/index.json").delete()  # a reinstall would now fail
    code, out, err = asyncio.run(_boot(google, script, root, allow_after=None))
    assert code == 0, out + err
    assert "token tok-123" in out


def test_a_machine_of_another_cluster_gives_up_with_a_message(tmp_path, google):
    google["secrets"].put("cluster-abc", {"env": {"X": "1"}}, tags={"cluster": "abc"})
    google["launch"]("xyz")
    boot = GcpMachineBoot(platform="oceanlab", bucket=BUCKET, api_url=API_URL, secret="cluster-abc", command=["true"])
    script = tmp_path / "startup-script.sh"
    script.write_text(gcp_machine_startup_script(boot).replace("-lt 300", "-lt 2"))
    code, _, err = asyncio.run(_boot(google, script, tmp_path / "root", allow_after=None))
    assert code == 1
    assert "machine secret unreadable after 2 tries (403)" in err


def test_no_command_is_refused():
    with pytest.raises(ValueError):
        gcp_machine_startup_script(GcpMachineBoot(platform="p", bucket="b", api_url="u", secret="s", command=[]))

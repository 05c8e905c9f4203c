"""The VM gateway backend on GCP against the fake Compute API: one instance per scheduler
and per worker from the profile's instance template as the rendered stack makes it (the
templates are created in the fake from the rendered `main.tf.json`: no Terraform Google
provider runs offline), labels for budgets and the reaper, the startup script that reads the
cluster's secret from the broker and starts the Dask command behind the dead-man switch (no
credential in it), the secret in Secret Manager labelled as the cluster's machines are and deleted
with it, liveness asked of the machines layer.

Real parts: google-cloud-compute and google-cloud-secret-manager (REST) against the fakes
validated by the discovery documents, graticule's GCP backend and machines layer, the
rendered `workers/<profile>.json`, `gateway/platform.json` and stack, dask-gateway's
database layer, the usage ledger on SQLite. Nothing boots here (the simulator's tests do
that): what would run is checked as the startup script given.
"""

from __future__ import annotations

import asyncio
import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from dask_gateway_server.backends.base import ClusterConfig
from dask_gateway_server.backends.db_base import DataManager
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from deploy.cloud.deadman import MACHINE_USER_DATA, UNIT
from deploy.cloud.gcp import GCPMachines
from deploy.cloud.gcp_machine_secrets import GcpMachineSecrets
from deploy.cloud.google_clients import ENDPOINTS_VARIABLE
from deploy.gateway.budgets import GatewayBudgets
from deploy.gateway.gcp import GCPBackend
from render.gateway_config import render_gateway
from render.terraform_gcp import synthesize_gcp
from render.workers import render_workers
from tests.support.gce.clients import client, wait
from tests.support.gce.rendered import Rendered
from tests.support.gce.server import running_fake_compute
from tests.support.gcp.secret_manager import running_secret_manager
from tests.test_terraform_gcp import example_platform


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    platform = example_platform()
    files = {**render_gateway(platform, "gcp"), **render_workers(platform, "gcp")}
    for path, data in files.items():
        (tmp_path / "build" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "build" / path).write_bytes(data)
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("GRATICULE_LEDGER_URL", raising=False)
    with running_fake_compute(platform.cloud.gcp.project) as fake, \
            running_secret_manager(platform.cloud.gcp.project) as secret_manager:
        Rendered(fake, json.loads(synthesize_gcp(platform))).create()
        backend = GCPBackend(platform=json.loads(files["gateway/platform.json"]), state_dir=str(tmp_path / "gateway"),
                             api_url="https://hub.example/api")
        backend.db = DataManager(url="sqlite://")
        backend.budgets = GatewayBudgets.open(backend.spec, backend.state_dir)
        template = backend.worker_template(backend.spec.dask.default_profile)
        backend.machines = GCPMachines(template["project"], regions=[template["region"]],
                                       client_options=fake.client_options(), credentials=AnonymousCredentials())
        backend.secrets = GcpMachineSecrets(template["project"], backend.spec.name, client=(
            secretmanager.SecretManagerServiceClient(credentials=AnonymousCredentials(), transport="rest",
                                                     client_options={"api_endpoint": secret_manager.url})))
        backend.secret_manager = secret_manager  # the test's handle on the fake
        fake.requests.clear()
        try:
            yield backend, fake
        finally:
            backend.budgets.close()


async def _start(job, starting, update) -> None:
    async for state in starting:
        update(job, state=state)


def _script(fake, name: str) -> tuple[str, str]:
    """(the whole startup script, the machine's own script inside the dead-man switch's wrapper)."""
    (instance,) = [i for i in fake.instances() if i["name"] == name]
    whole = {item["key"]: item["value"] for item in instance["metadata"]["items"]}["startup-script"]
    (carried,) = [line.split()[1] for line in whole.splitlines() if line.endswith(f"base64 -d > {MACHINE_USER_DATA}")]
    return whole, base64.b64decode(carried).decode()


def test_the_backend_names_the_rendered_template_and_finds_the_endpoints_file(gateway, tmp_path, monkeypatch):
    backend, _ = gateway
    template = backend.worker_template("gpu")
    assert backend.template_of(template) == "projects/oceanlab-prod/global/instanceTemplates/oceanlab-gpu"
    endpoints = tmp_path / "google-endpoints.json"
    endpoints.write_text(json.dumps({"compute": "http://10.99.0.1:8080"}))
    monkeypatch.setenv(ENDPOINTS_VARIABLE, str(endpoints))
    machines = backend.make_machines()  # nothing asked of any API yet
    assert machines.client_options == {"api_endpoint": "http://10.99.0.1:8080"}
    assert (machines.project, machines.regions) == ("oceanlab-prod", ["us-central1"])
    monkeypatch.delenv(ENDPOINTS_VARIABLE)
    on_the_vm = backend.make_machines()
    assert on_the_vm.client_options == {}  # Google's own endpoints, with the instance's account:
    assert type(on_the_vm.credentials).__module__ == "google.auth.compute_engine.credentials"


def test_a_cluster_on_its_own_instances_with_labels_liveness_and_stop(gateway):
    backend, fake = gateway
    user = next(name for name, grants in backend.spec.users.items() if grants.budget and "gpu" in grants.profiles)

    async def scenario():
        cluster = backend.db.create_cluster(user, {"profile": "gpu"}, ClusterConfig().to_dict())
        await _start(cluster, backend.do_start_cluster(cluster), backend.db.update_cluster)
        backend.db.update_cluster(cluster, scheduler_address="tls://10.50.0.3:8786")
        worker = backend.db.create_worker(cluster)
        await _start(worker, backend.do_start_worker(worker), backend.db.update_worker)

        scheduler, machine = cluster.state["machine_id"], worker.state["machine_id"]
        found = {m.id: m for m in backend.machines.list({"cluster": cluster.name})}
        assert set(found) == {scheduler, machine} and worker.state["private_ip"].startswith("10.50.")
        labels = found[machine].tags
        assert (labels["role"], labels["platform"], labels["user"], labels["budget"]) == \
            ("worker", "oceanlab", user, backend.spec.users[user].budget)
        assert labels["profile"] == "gpu"  # the template's label kept
        (raw,) = [i for i in fake.instances() if i["name"] == machine]
        assert raw["guestAccelerators"] and raw["scheduling"]["onHostMaintenance"] == "TERMINATE"
        whole, script = _script(fake, machine)
        assert f"systemctl enable --now {UNIT}" in whole and "https://hub.example/api/health" in whole
        broker = f"https://hub.example/api/graticule/v1/machine-secret/cluster-{cluster.name}"
        assert broker in script and "format=full" in script
        assert "distributed.cli.dask_worker" in script and "GRATICULE_MACHINE_ID" in script
        _, scheduler_script = _script(fake, scheduler)
        for credential in (cluster.token, cluster.tls_key.decode().splitlines()[1]):
            assert credential not in whole and credential not in script and credential not in scheduler_script
        secret_id = f"graticule-oceanlab-machines-cluster-{cluster.name}"
        stored = backend.secret_manager.secrets[secret_id]
        assert stored["labels"] == {"platform": "oceanlab", "cluster": cluster.name, "user": user}
        assert not stored.get("annotations")  # nothing per machine: the broker reads the instance's labels
        read = backend.secrets.read(f"cluster-{cluster.name}")
        assert all(read.owner.items() <= found[m].tags.items() for m in (scheduler, machine))  # both answered
        values = read.values
        assert values["env"] == {"DASK_GATEWAY_API_TOKEN": cluster.token}
        assert cluster.tls_key.decode() in values["files"].values()
        assert await backend.do_check_workers([worker]) == [True]

        # The instance goes away behind the gateway's back: its liveness says so.
        zone = found[machine].zone
        wait(fake, client(fake, "InstancesClient").delete(project=fake.project, zone=zone, instance=machine))
        assert await backend.do_check_workers([worker]) == [False]
        assert await backend.do_check_clusters([cluster]) == [True]
        await backend.do_stop_cluster(cluster)
        assert await backend.do_check_clusters([cluster]) == [False]
        assert backend.machines.list({"cluster": cluster.name}) == []
        assert secret_id not in backend.secret_manager.secrets  # deleted with the cluster

    asyncio.run(scenario())
    assert len(fake.calls("compute.regions.get")) == 1 and fake.instances() == []


def test_a_spot_profile_launches_spot_and_falls_back_to_standard(gateway):
    backend, fake = gateway
    user = next(name for name, grants in backend.spec.users.items() if grants.budget and "large" in grants.profiles)

    async def specs():  # dask-gateway's records need a running event loop
        cluster = backend.db.create_cluster(user, {"profile": "large"}, ClusterConfig().to_dict())
        return [backend._machine_spec(cluster, "worker", f"w{i}", ["dask-worker"], {}) for i in (1, 2)]

    first, second = asyncio.run(specs())
    assert first.spot and second.spot  # `spot: true` on the example's large profile
    spot = backend.machines.launch(first)
    raw = {i["name"]: i for i in fake.instances()}
    assert spot.spot and raw[spot.id]["scheduling"]["instanceTerminationAction"] == "DELETE"
    fake.refuse(provisioning="SPOT")
    standard = backend.machines.launch(second)
    assert not standard.spot and len(fake.refused) == len(backend.machines.zones())
    scheduling = {i["name"]: i for i in fake.instances()}[standard.id]["scheduling"]
    assert (scheduling["provisioningModel"], scheduling["onHostMaintenance"]) == ("STANDARD", "MIGRATE")
    backend.machines.terminate([spot.id, standard.id])
    assert fake.instances() == []


def test_as_many_launches_wait_at_once_as_dask_gateway_starts(gateway):
    """dask-gateway starts up to `parallelism` (20) clusters at once; each scheduler's launch
    waits for its insert operation. With the fake holding every wait, all 20 must be in flight
    together (asyncio's default pool would hold them to min(32, cpus + 4)). A cluster's
    workers are one bulkInsert (vm_batches), so schedulers are what run side by side."""
    backend, fake = gateway
    user = next(name for name, grants in backend.spec.users.items() if grants.budget and "small" in grants.profiles)
    held = fake.hold("compute.zoneOperations.wait")

    async def scenario() -> int:
        await backend.do_setup()
        clusters = [backend.db.create_cluster(user, {"profile": "small"}, ClusterConfig().to_dict())
                    for _ in range(backend.parallelism)]
        starts = [asyncio.ensure_future(_start(c, backend.do_start_cluster(c), backend.db.update_cluster))
                  for c in clusters]
        with ThreadPoolExecutor(max_workers=1) as own:  # not the pool under test
            reached = await asyncio.get_running_loop().run_in_executor(own, held.reached, backend.parallelism, 60)
        held.release()
        await asyncio.gather(*starts)
        return reached

    assert asyncio.run(scenario()) and held.most == backend.parallelism == 20
    assert len({i["name"] for i in fake.instances()}) == 20

"""The VM gateway backend on GCP against the fake Compute API: one instance per scheduler
and per worker from the profile's instance template as the rendered stack makes it (the
templates are created in the fake from the rendered `main.tf.json`: no Terraform Google
provider runs offline), labels for budgets and the reaper, the startup script that starts
the Dask command behind the dead-man switch, liveness asked of the machines layer.

Real parts: google-cloud-compute (REST), graticule's GCP backend and machines layer, the
rendered `workers/<profile>.json`, `gateway/platform.json` and stack, dask-gateway's
database layer, the usage ledger on SQLite. Nothing boots here (the simulator's tests do
that): what would run is checked as the startup script given.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from dask_gateway_server.backends.base import ClusterConfig
from dask_gateway_server.backends.db_base import DataManager
from google.auth.credentials import AnonymousCredentials

from deploy.cloud.deadman import MACHINE_USER_DATA, UNIT
from deploy.cloud.gcp import GCPMachines
from deploy.cloud.gcp_endpoints import ENDPOINTS_ENV
from deploy.gateway.budgets import GatewayBudgets
from deploy.gateway.gcp import GCPBackend
from render.gateway_config import render_gateway
from render.terraform_gcp import synthesize_gcp
from render.workers import render_workers
from tests.support.gce.clients import client, wait
from tests.support.gce.rendered import Rendered
from tests.support.gce.server import running_fake_compute
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
    with running_fake_compute(platform.cloud.gcp.project) as fake:
        Rendered(fake, json.loads(synthesize_gcp(platform))).create()
        backend = GCPBackend(platform=json.loads(files["gateway/platform.json"]), state_dir=str(tmp_path / "gateway"),
                             api_url="https://hub.example/api")
        backend.db = DataManager(url="sqlite://")
        backend.budgets = GatewayBudgets.open(backend.spec, backend.state_dir)
        template = backend.worker_template(backend.spec.dask.default_profile)
        backend.machines = GCPMachines(template["project"], regions=[template["region"]],
                                       client_options=fake.client_options(), credentials=AnonymousCredentials())
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
    monkeypatch.setenv(ENDPOINTS_ENV, str(endpoints))
    machines = backend.make_machines()  # nothing asked of any API yet
    assert machines.client_options == {"api_endpoint": "http://10.99.0.1:8080"}
    assert (machines.project, machines.regions) == ("oceanlab-prod", ["us-central1"])
    monkeypatch.setenv(ENDPOINTS_ENV, str(tmp_path / "absent.json"))
    assert backend.make_machines().client_options == {}  # Google's own endpoints


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
        assert "distributed.cli.dask_worker" in script and "tls://10.50.0.3:8786" in script
        assert await backend.do_check_workers([worker]) == [True]

        # The instance goes away behind the gateway's back: its liveness says so.
        zone = found[machine].zone
        wait(fake, client(fake, "InstancesClient").delete(project=fake.project, zone=zone, instance=machine))
        assert await backend.do_check_workers([worker]) == [False]
        assert await backend.do_check_clusters([cluster]) == [True]
        await backend.do_stop_cluster(cluster)
        assert await backend.do_check_clusters([cluster]) == [False]
        assert backend.machines.list({"cluster": cluster.name}) == []

    asyncio.run(scenario())
    assert len(fake.calls("compute.regions.get")) == 1 and fake.instances() == []

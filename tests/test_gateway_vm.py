"""The VM gateway backend on AWS against a real moto server (the EC2 API): one instance
per scheduler and per worker from the profile's rendered launch template, with user data
that starts the Dask command; liveness asked of the machines layer through
`do_check_workers`, so a worker whose instance dies has its interval closed in the ledger.

Real parts: moto (AWS API), boto3, graticule's AWS backend and machines layer, the
rendered `workers/<profile>.json` and `gateway/platform.json`, dask-gateway's database
layer, the usage ledger on SQLite. Instances in moto do not boot: what runs on them is
checked as the user data they were given.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from dask_gateway_server.backends.base import ClusterConfig
from dask_gateway_server.backends.db_base import DataManager, JobStatus
from sqlalchemy import create_engine, select

from deploy.budgets import Request
from deploy.cloud.aws import AWSMachines
from deploy.cloud.deadman import UNIT
from deploy.cloud.machines import MachineSpec
from deploy.gateway.aws import AWSBackend
from deploy.gateway.budgets import GatewayBudgets
from deploy.ledger.models import ROLE_WORKER, UsageInterval
from render.gateway_config import render_gateway
from render.validate import validate_text
from render.workers import render_workers
from tests.support.vm_gateway import user_data


def _launch_templates(aws, workers: dict[str, dict]) -> None:
    ec2 = aws.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    for template in workers.values():
        ec2.create_launch_template(
            LaunchTemplateName=template["launch_template_name"],
            LaunchTemplateData={"ImageId": image, "InstanceType": template["instance_type"]},
        )


def _backend(tmp_path, monkeypatch, aws, text: str) -> AWSBackend:
    platform_model = validate_text(text)
    files = {**render_gateway(platform_model, "aws"), **render_workers(platform_model, "aws")}
    for path, data in files.items():
        (tmp_path / "build" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "build" / path).write_bytes(data)
    workers = {p: json.loads(d) for p, d in files.items() if p.startswith("workers/")}
    _launch_templates(aws, workers)
    platform = json.loads(files["gateway/platform.json"])
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("GRATICULE_LEDGER_URL", raising=False)
    backend = AWSBackend(platform=platform, state_dir=str(tmp_path / "gateway"), api_url="https://hub.example/api")
    backend.db = DataManager(url="sqlite://")
    backend.budgets = GatewayBudgets.open(backend.spec, backend.state_dir)
    return backend


def _user(backend) -> str:
    return next(name for name, grants in backend.spec.users.items() if grants.profiles and grants.budget)


async def _start(job, starting, update) -> None:
    async for state in starting:
        update(job, state=state)
    update(job, status=JobStatus.RUNNING)


def test_the_backend_reads_the_rendered_worker_template(tmp_path, monkeypatch, aws, platform_text):
    backend = _backend(tmp_path, monkeypatch, aws, platform_text)
    try:
        profile = backend.spec.dask.default_profile
        template = backend.worker_template(profile)
        assert backend.template_of(template) == template["launch_template_name"]
        assert template["launch_template_name"].startswith("oceanlab-")
        assert backend.make_machines().region == template["region"] == "us-west-2"
    finally:
        backend.budgets.close()


def test_a_worker_whose_instance_dies_is_found_by_do_check_workers_and_closed(tmp_path, monkeypatch, aws,
                                                                              platform_text):
    backend = _backend(tmp_path, monkeypatch, aws, platform_text)
    backend.machines = AWSMachines(region=aws.region, endpoint_url=aws.url)
    user = _user(backend)
    profile = backend.spec.users[user].default_profile

    async def scenario():
        config = ClusterConfig().to_dict()
        cluster = backend.db.create_cluster(user, {"profile": profile}, config)
        await _start(cluster, backend.do_start_cluster(cluster), backend.db.update_cluster)
        backend.db.update_cluster(cluster, scheduler_address="tls://10.0.0.5:8786")
        worker = backend.db.create_worker(cluster)
        backend.budgets.budgets.admit(Request(
            user=user, cluster=cluster.name, process=worker.name, profile=profile, role=ROLE_WORKER,
            cores=2.0, memory_bytes=2**33, price_per_hour_usd=0.1,
        ))
        await _start(worker, backend.do_start_worker(worker), backend.db.update_worker)

        scheduler_id, worker_id = cluster.state["machine_id"], worker.state["machine_id"]
        assert scheduler_id != worker_id
        found = {m.id: m for m in backend.machines.list({"cluster": cluster.name})}
        assert set(found) == {scheduler_id, worker_id}
        tags = found[worker_id].tags
        assert (tags["role"], tags["platform"], tags["user"]) == ("worker", backend.spec.name, user)
        assert tags["budget"] == backend.spec.users[user].budget  # the hub's IAM policy requires it
        whole, script = user_data(aws, worker_id)
        assert f"systemctl enable --now {UNIT}" in whole and "https://hub.example/api/health" in whole
        # the worker asks the gateway for its scheduler: neither it nor a credential is in user data
        assert "distributed.cli.dask_worker" in script and "tls://10.0.0.5:8786" not in script
        assert "BEGIN" not in script and f"DASK_GATEWAY_CLUSTER_NAME={cluster.name}" in script
        assert await backend.do_check_workers([worker]) == [True]
        assert await backend.do_check_clusters([cluster]) == [True]

        aws.client("ec2").terminate_instances(InstanceIds=[worker_id])  # the machine dies
        assert await backend.do_check_workers([worker]) == [False]
        live = await backend._budget_live()
        assert (cluster.name, worker.name) not in live and (cluster.name, cluster.name) in live
        # closed at the instance's end while liveness looked (deploy.gateway.machine_meter)
        assert (cluster.name, worker.name) not in backend.budgets.budgets.ledger.open_processes()

        await backend.do_stop_cluster(cluster)
        assert await backend.do_check_clusters([cluster]) == [False]
        assert backend.machines.list({"cluster": cluster.name}) == []
        return worker.name

    try:
        worker_name = asyncio.run(scenario())
    finally:
        backend.budgets.close()
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with engine.connect() as conn:
        row = conn.execute(select(UsageInterval).where(UsageInterval.process == worker_name)).one()
    engine.dispose()
    assert row.ended_at is not None


def test_machines_describe_leaves_out_unknown_ids_and_launch_refusals_are_errors(aws):
    from deploy.cloud.machines import MachinesError

    machines = AWSMachines(region=aws.region, endpoint_url=aws.url)
    assert machines.describe(["i-0123456789abcdef0"]) == {}
    with pytest.raises(MachinesError, match="run_instances"):
        machines.launch(MachineSpec(name="x", template="no-such-template"))


def test_each_machine_spec_asks_spot_as_its_profile_allows_with_the_budget_and_a_dead_man_switch(
        tmp_path, monkeypatch, aws, platform_text):
    backend = _backend(tmp_path, monkeypatch, aws, platform_text)
    try:
        user = next(name for name, grants in backend.spec.users.items()
                    if grants.budget and {"small", "large"} <= set(grants.profiles))

        async def machine_specs() -> dict:  # dask-gateway's records need a running event loop
            specs = {}
            for profile in ("small", "large"):
                cluster = backend.db.create_cluster(user, {"profile": profile}, ClusterConfig().to_dict())
                specs[profile] = backend._machine_spec(cluster, "worker", "w", ["dask-worker"], {})
            return specs

        specs = asyncio.run(machine_specs())
        assert (specs["small"].spot, specs["large"].spot) == (False, True)  # `spot: true` on large only
        assert specs["large"].template == backend.worker_template("large")["launch_template_name"]
        for spec in specs.values():
            assert spec.tags["budget"] == backend.spec.users[user].budget and spec.tags["platform"] == "oceanlab"
            assert spec.deadman is not None and spec.deadman.hub_url == "https://hub.example/api/health"
            assert spec.deadman.after_seconds == 15 * 60
    finally:
        backend.budgets.close()

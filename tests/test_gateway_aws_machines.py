"""The AWS gateway backend's machines against a real moto server: the scheduler and each
worker on an instance of its own from the profile's launch template, the workers of a
scale-up in one batched RunInstances, every tag at launch, the cluster's credentials in a
Secrets Manager secret readable only by its instances (never in user data) and deleted when
it stops, a worker machine told by the gateway's API which worker it is, spot refused ->
on-demand, a reclaimed scheduler failing its cluster with a message that says so.

Real parts: moto (EC2, Secrets Manager, IAM), boto3, the backend and machines layer, the
rendered templates, dask-gateway's database records, aiohttp serving the machines route.
Counting RunInstances: a botocore event hook on the client the machines layer uses.
Instances do not boot here (tests/test_aws_cluster_e2e.py boots them in the simulator).
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp import web
from dask_gateway_server.backends.base import ClusterConfig
from dask_gateway_server.backends.db_base import JobStatus
from dask_gateway_server.proxy import Proxy

from deploy.cloud.aws import AWSMachines
from deploy.gateway.aws import AWSBackend
from deploy.gateway.machines_api import add_machine_routes
from deploy.gateway.vm import ASKS_THE_GATEWAY
from tests.support.simulator.capacity import CapacityProxy
from tests.support.vm_gateway import user_data as vm_user_data
from tests.test_gateway_vm import _backend, _start

HUB_IP = "10.0.1.10"
BUCKET = "oceanlab-artifacts-123456789012"


def _aws_backend(tmp_path, monkeypatch, aws, text, endpoint: str | None = None):
    backend = _backend(tmp_path, monkeypatch, aws, text)
    iam = aws.client("iam")
    iam.create_role(RoleName="workers", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="oceanlab-worker-x")
    iam.add_role_to_instance_profile(InstanceProfileName="oceanlab-worker-x", RoleName="workers")
    outputs = {"artifacts_bucket": BUCKET, "hub_private_ip": HUB_IP,
               "worker_instance_profile_by_user": {user: "oceanlab-worker-x" for user in backend.spec.users}}
    (tmp_path / "build" / "outputs.json").write_text(json.dumps(outputs))
    (tmp_path / "build" / "environments").mkdir(exist_ok=True)
    (tmp_path / "build" / "environments" / "wheels.json").write_text(
        json.dumps({name: f"key-{name}" for name in ("default", "geo", "ml", "base")}))
    calls: list[dict] = []
    client = aws.client("ec2") if endpoint is None else _client(aws, endpoint)
    client.meta.events.register("provide-client-params.ec2.RunInstances",
                                lambda params, **_: calls.append(dict(params)))
    backend.machines = AWSMachines(region=aws.region, client=client, platform="oceanlab",
                                   subnets=_subnets(aws))
    return backend, calls


def _client(aws, endpoint: str):
    import boto3

    from tests.support.moto_server import CREDENTIALS
    return boto3.client("ec2", endpoint_url=endpoint, region_name=aws.region, **CREDENTIALS)


def _subnets(aws) -> dict[str, str]:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return {zone: ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
            for zone, cidr in (("us-west-2a", "10.0.1.0/24"), ("us-west-2b", "10.0.2.0/24"))}


def _user_with(backend, profile: str) -> str:
    return next(name for name, grants in backend.spec.users.items() if grants.budget and profile in grants.profiles)


def _raw(aws, instance_id: str) -> dict:
    (reservation,) = aws.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0]


def _user_data(aws, instance_id: str) -> str:
    """The whole user data and the machine's own script the dead-man switch's wrapper carries."""
    whole, script = vm_user_data(aws, instance_id)
    return whole + "\n" + script


async def _ask(app: web.Application, cluster: str, machine: str, token: str) -> tuple[int, dict]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/api/graticule/v1/clusters/{cluster}/machines/{machine}?wait=0"
            async with session.get(url, headers={"Authorization": f"token {token}"}) as answer:
                return answer.status, (await answer.json() if answer.status == 200 else {})
    finally:
        await runner.cleanup()


def test_a_cluster_on_instances_batched_tagged_and_without_credentials_in_user_data(tmp_path, monkeypatch, aws,
                                                                                   platform_text):
    backend, calls = _aws_backend(tmp_path, monkeypatch, aws, platform_text)
    user = _user_with(backend, "small")
    secrets = aws.client("secretsmanager")
    backend.proxy = Proxy(parent=backend, prefix="/services/dask-gateway")  # as the rendered config sets it
    machine_api = AWSBackend._api_url_default(backend)  # (the test's backend was given api_url)
    assert machine_api == f"http://{HUB_IP}:8000/services/dask-gateway/api"  # through the hub's proxy

    async def scenario():
        cluster = backend.db.create_cluster(user, {"profile": "small"}, ClusterConfig().to_dict())
        await _start(cluster, backend.do_start_cluster(cluster), backend.db.update_cluster)
        assert len(calls) == 1 and calls[0]["MinCount"] == calls[0]["MaxCount"] == 1
        workers = [backend.db.create_worker(cluster) for _ in range(2)]
        await asyncio.gather(*(_start(w, backend.do_start_worker(w), backend.db.update_worker) for w in workers))
        assert len(calls) == 2 and calls[1]["MinCount"] == calls[1]["MaxCount"] == 2  # one request, two workers

        scheduler_id = cluster.state["machine_id"]
        worker_ids = [w.state["machine_id"] for w in workers]
        assert len({scheduler_id, *worker_ids}) == 3
        for machine_id, role in ((scheduler_id, "scheduler"), *((i, "worker") for i in worker_ids)):
            raw = _raw(aws, machine_id)
            tags = {t["Key"]: t["Value"] for t in raw["Tags"]}
            assert (tags["platform"], tags["role"], tags["user"], tags["cluster"]) == ("oceanlab", role, user,
                                                                                      cluster.name)
            assert tags["budget"] == backend.spec.users[user].budget
            data = _user_data(aws, machine_id)
            for credential in (cluster.token, cluster.tls_key.decode(), cluster.tls_cert.decode()):
                assert credential not in data
            assert "BEGIN" not in data and BUCKET in data and "environments/$ENVIRONMENT" in data
        assert _user_data(aws, worker_ids[0]) == _user_data(aws, worker_ids[1])
        assert all(c["IamInstanceProfile"] == {"Name": "oceanlab-worker-x"} for c in calls)  # the user's role

        name = f"graticule/oceanlab/machines/cluster-{cluster.name}"
        value = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
        assert value["env"]["DASK_GATEWAY_API_TOKEN"] == cluster.token
        assert value["files"]["dask.pem"] == cluster.tls_key.decode()
        (statement,) = json.loads(secrets.get_resource_policy(SecretId=name)["ResourcePolicy"])["Statement"]
        readers = statement["Condition"]["ArnNotLike"]["ec2:SourceInstanceARN"]
        assert sorted(readers) == sorted(f"arn:*:ec2:*:*:instance/{i}" for i in (scheduler_id, *worker_ids))

        # A worker machine asks the gateway who it is, with the cluster's token.
        app = web.Application()
        routes = web.RouteTableDef()
        add_machine_routes(routes, "/api/graticule/v1", backend)
        app.router.add_routes(routes)
        assert (await _ask(app, cluster.name, worker_ids[1], "wrong"))[0] == 401
        status, answer = await _ask(app, cluster.name, worker_ids[1], cluster.token)
        assert (status, answer) == (200, {"worker": workers[1].name, "scheduler_address": "", "stop": False})
        backend.db.update_cluster(cluster, scheduler_address="tls://10.0.1.7:8786")
        status, answer = await _ask(app, cluster.name, worker_ids[0], cluster.token)
        assert answer == {"worker": workers[0].name, "scheduler_address": "tls://10.0.1.7:8786", "stop": False}
        assert backend.known_scheduler_address(cluster) == ASKS_THE_GATEWAY  # initial workers start at once

        backend.db.update_cluster(cluster, target=JobStatus.STOPPED)
        await backend.do_stop_cluster(cluster)
        assert backend.machines.list({"cluster": cluster.name}) == []
        assert secrets.list_secrets()["SecretList"] == []
        # a machine still asking (its dead-man switch not yet fired) is told to stop
        assert (await _ask(app, cluster.name, worker_ids[0], cluster.token)) == (200, {
            "worker": None, "scheduler_address": "", "stop": True})

    try:
        asyncio.run(scenario())
    finally:
        backend.budgets.close()


def test_spot_refused_worker_replaced_on_demand_and_a_reclaimed_scheduler_says_so(tmp_path, monkeypatch, aws,
                                                                                 platform_text):
    with CapacityProxy(aws) as proxy:
        backend, calls = _aws_backend(tmp_path, monkeypatch, aws, platform_text, endpoint=proxy.url)
        user = _user_with(backend, "large")
        assert backend.worker_template("large")["spot"] is True

        async def scenario():
            cluster = backend.db.create_cluster(user, {"profile": "large"}, ClusterConfig().to_dict())
            await _start(cluster, backend.do_start_cluster(cluster), backend.db.update_cluster)
            worker = backend.db.create_worker(cluster)
            await _start(worker, backend.do_start_worker(worker), backend.db.update_worker)
            assert _raw(aws, worker.state["machine_id"]).get("InstanceLifecycle") == "spot"

            aws.client("ec2").terminate_instances(InstanceIds=[worker.state["machine_id"]])  # EC2 reclaims it
            assert await backend.do_check_workers([worker]) == [False]
            proxy.refuse(spot=True)  # and has no spot capacity left
            replacement = backend.db.create_worker(cluster)
            await _start(replacement, backend.do_start_worker(replacement), backend.db.update_worker)
            raw = _raw(aws, replacement.state["machine_id"])
            assert raw.get("InstanceLifecycle") != "spot" and raw["State"]["Name"] in ("pending", "running")
            assert proxy.refused and all(spot for _, _, spot in proxy.refused)
            assert [c.get("InstanceMarketOptions", {}).get("MarketType") for c in calls[-3:]] == [
                "spot", "spot", None]  # both zones refused spot, then on demand

            aws.client("ec2").terminate_instances(InstanceIds=[cluster.state["machine_id"]])  # the scheduler too
            backend.db.update_cluster(cluster, target=JobStatus.FAILED)  # its heartbeat stops
            await backend.do_stop_cluster(cluster)
            reason = cluster.options["stop_reason"]
            assert cluster.state["machine_id"] in reason and "spot instance, reclaimed" in reason
            assert backend.machines.list({"cluster": cluster.name}) == []

        try:
            asyncio.run(scenario())
        finally:
            backend.budgets.close()


def test_the_rendered_config_gives_machines_minutes_to_start_and_local_processes_seconds(tmp_path, monkeypatch,
                                                                                        platform_text):
    from deploy.gateway.local import LocalProcessBackend
    from render.validate import validate_text
    from tests.test_gateway_config import RUNTIME, _build, _loaded

    for key, value in RUNTIME.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(tmp_path / "state"))
    config = _loaded(_build(validate_text(platform_text), "aws", tmp_path / "build"))
    vm = AWSBackend(config=config)
    assert (vm.cluster_start_timeout, vm.worker_start_timeout) == (600.0, 600.0)
    local = LocalProcessBackend(config=config)
    assert (local.cluster_start_timeout, local.worker_start_timeout) == (60.0, 60.0)


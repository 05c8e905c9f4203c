"""A fleet of instances for the reaper's tests (tests/test_reaper.py, test_hub_vm_reaper.py,
test_notebook_reaping.py): what the reaper must terminate and what it must keep, in moto,
and the gateway database that names the machines it knows. The `fleet` fixture
(tests/support/aws_fixtures.py) makes it in the module's moto server.
"""

from __future__ import annotations

import asyncio

from deploy.cloud.aws import AWSMachines
from deploy.cloud.machines import MachineSpec
from tests.support.moto_server import MotoServer

PLATFORM = "oceanlab"
TEMPLATE = "oceanlab-small"


def aws_fleet(moto_server: MotoServer) -> tuple[MotoServer, AWSMachines, dict[str, str]]:
    """The platform's instances (an emptied moto): two workers the gateway knows, an orphan,
    the hub and the CI runner (Terraform's, no role), and another platform's orphan."""
    ec2 = moto_server.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName=TEMPLATE, LaunchTemplateData={"ImageId": image})
    machines = AWSMachines(region=moto_server.region, endpoint_url=moto_server.url)

    def launch(name: str, platform: str = PLATFORM, **tags: str) -> str:
        spec = MachineSpec(name=name, template=TEMPLATE,
                           tags={"platform": platform, "role": "worker", "budget": "ocean", **tags})
        return machines.launch(spec).id

    ids = {
        "known": launch("known", cluster="a"), "known2": launch("known2", role="scheduler", cluster="a"),
        "orphan": launch("orphan", cluster="gone"), "elsewhere": launch("orphan", platform="other"),
    }
    for name, tags in (("hub", {"role": "hub"}), ("runner", {})):
        tagged = [{"Key": k, "Value": v} for k, v in {"platform": PLATFORM, "Name": name, **tags}.items()]
        ids[name] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[
            {"ResourceType": "instance", "Tags": tagged}])["Instances"][0]["InstanceId"]
    return moto_server, machines, ids


def instance_states(moto, ids: dict[str, str]) -> dict[str, str]:
    answer = moto.client("ec2").describe_instances(InstanceIds=list(ids.values()))
    by_id = {i["InstanceId"]: i["State"]["Name"] for r in answer["Reservations"] for i in r["Instances"]}
    return {name: by_id[instance_id] for name, instance_id in ids.items()}


def gateway_database(path, ids: dict[str, str]) -> str:
    """A real dask-gateway database: a running cluster whose scheduler and worker run on the
    known machines, and a stopped cluster whose scheduler's machine is the orphan."""
    from cryptography.fernet import Fernet
    from dask_gateway_server.backends.base import ClusterConfig
    from dask_gateway_server.backends.db_base import DataManager, JobStatus

    url = f"sqlite:///{path}"

    async def record() -> None:  # dask-gateway's records need a running event loop
        db = DataManager(url=url, encrypt_keys=[Fernet.generate_key()])
        running = db.create_cluster("alice", {}, ClusterConfig().to_dict())
        db.update_cluster(running, status=JobStatus.RUNNING, state={"machine_id": ids["known"]})
        worker = db.create_worker(running)
        db.update_worker(worker, status=JobStatus.RUNNING, state={"machine_id": ids["known2"]})
        stopped = db.create_cluster("alice", {}, ClusterConfig().to_dict())
        db.update_cluster(stopped, status=JobStatus.STOPPED, state={"machine_id": ids["orphan"]})
        db.db.dispose()

    asyncio.run(record())
    return url

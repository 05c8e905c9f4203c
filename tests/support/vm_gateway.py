"""graticule's AWS gateway backend in the test process, against a real moto server.

The rendered `gateway/platform.json` and `workers/<profile>.json`, launch templates and the
platform's private subnets (tagged as the stack tags them) in moto, dask-gateway's
database layer in memory and the usage ledger on SQLite, on a clock the test may move.
Instances in moto do not boot: jobs are started with the backend's own `do_start_*`.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from dask_gateway_server.backends.base import ClusterConfig
from dask_gateway_server.backends.db_base import DataManager, JobStatus
from dask_gateway_server.workqueue import Backoff, WorkQueue

from deploy.budgets import Budgets, Policy
from deploy.cloud.aws import AWSMachines
from deploy.cloud.deadman import MACHINE_USER_DATA
from deploy.gateway.aws import AWSBackend
from deploy.gateway.budgets import GatewayBudgets
from deploy.gateway.options import worker_config
from deploy.ledger import Ledger, ManualClock
from deploy.ledger.models import ROLE_SCHEDULER, ROLE_WORKER
from render.gateway_config import render_gateway
from render.validate import validate_text
from render.workers import render_workers


def aws_text(example_text: str) -> str:
    return example_text.replace("target: local ", "target: aws   ")


def prepare_moto(aws, workers: dict[str, dict], platform: str) -> None:
    """Launch templates for every profile and one private subnet per zone, tagged."""
    ec2 = aws.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    for template in workers.values():
        ec2.create_launch_template(
            LaunchTemplateName=template["launch_template_name"],
            LaunchTemplateData={"ImageId": image, "InstanceType": template["instance_type"]},
        )
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    for n, zone in enumerate((f"{aws.region}a", f"{aws.region}b")):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{n}.0/24", AvailabilityZone=zone)["Subnet"]
        ec2.create_tags(Resources=[subnet["SubnetId"]],
                        Tags=[{"Key": "platform", "Value": platform}, {"Key": "tier", "Value": "private"}])


def render_into(root: Path, text: str) -> dict[str, bytes]:
    model = validate_text(text)
    files = {**render_gateway(model, "aws"), **render_workers(model, "aws")}
    for path, data in files.items():
        (root / "build" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "build" / path).write_bytes(data)
    return files


def backend(tmp_path: Path, monkeypatch, aws, text: str, clock: ManualClock | None = None,
            prepare: bool = True) -> AWSBackend:
    """`prepare`: create the launch templates and subnets (False: a second backend, a restart)."""
    files = render_into(tmp_path, text)
    workers = {p: json.loads(d) for p, d in files.items() if p.startswith("workers/")}
    platform = json.loads(files["gateway/platform.json"])
    if prepare:
        prepare_moto(aws, workers, platform["name"])
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("GRATICULE_LEDGER_URL", raising=False)
    made = AWSBackend(platform=platform, state_dir=str(tmp_path / "gateway"), api_url="https://hub.example/api",
                      templates_dir=str(tmp_path / "build" / "workers"))
    made.db = DataManager(url="sqlite://")
    ledger = Ledger.open(state_dir=tmp_path, clock=clock or ManualClock(time.time()))
    made.budgets = GatewayBudgets(Budgets(ledger, Policy.from_gateway_spec(made.spec)), made.spec,
                                  whole_machines=made.whole_machines)
    made.machines = AWSMachines(region=aws.region, endpoint_url=aws.url, platform=made.spec.name)
    return made


def user_data(aws, instance_id: str) -> tuple[str, str]:
    """(the whole user data, the machine's own script inside the dead-man switch's wrapper)."""
    answer = aws.client("ec2").describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    whole = base64.b64decode(answer["UserData"]["Value"]).decode()
    (carried,) = [line.split()[1] for line in whole.splitlines() if line.endswith(f"base64 -d > {MACHINE_USER_DATA}")]
    return whole, base64.b64decode(carried).decode()


def give_queue(made: AWSBackend) -> None:
    """dask-gateway's reconcile queue (stop_cluster puts clusters there; nothing reconciles
    them here). Inside the test's event loop: the queue binds to the running one."""
    made.queue = WorkQueue(backoff=Backoff())


async def start(made: AWSBackend, job, kind: str) -> None:
    """Admit `job` as the gateway does, then start it with the backend's do_start_*."""
    cluster = getattr(job, "cluster", job)
    role = ROLE_SCHEDULER if kind == "cluster" else ROLE_WORKER
    request = made.budgets._request(cluster.username, cluster.name, job.name, cluster.options, cluster.config, role)
    made.budgets.budgets.admit(request)
    starting = made.do_start_cluster(job) if kind == "cluster" else made.do_start_worker(job)
    update = made.db.update_cluster if kind == "cluster" else made.db.update_worker
    async for state in starting:
        update(job, state=state)
    update(job, status=JobStatus.SUBMITTED)


async def cluster_with_workers(made: AWSBackend, user: str, profile: str, workers: int):
    config = ClusterConfig(**worker_config(made.spec, profile)).to_dict()  # as the gateway's options make it
    cluster = made.db.create_cluster(user, {"profile": profile}, config)
    await start(made, cluster, "cluster")
    made.db.update_cluster(cluster, scheduler_address="tls://10.40.0.5:8786", status=JobStatus.RUNNING)
    started = []
    for _ in range(workers):
        worker = made.db.create_worker(cluster)
        await start(made, worker, "worker")
        started.append(worker)
    return cluster, started

"""What the VM spawner's tests on AWS start from (tests/test_vm_spawner*.py): the published
build of an aws platform with its network, launch templates, instance profile and outputs in
moto (the `vm_site` fixture of tests/support/aws_fixtures.py), and a spawner for one of its
users, as the hub makes it."""

from __future__ import annotations

import json
from types import SimpleNamespace

from deploy.cloud.aws import AWSMachines
from deploy.cloud.home_volumes import AWSHomeVolumes
from deploy.cloud.machine_secrets import MachineSecrets
from deploy.hub.vm_spawner import VMSpawner
from render.hub_config import hub_data
from render.validate import validate_text
from render.workers import render_workers

PLATFORM = "oceanlab"
TOKEN = "hub-api-token-of-alice-0123456789"
HUB_IP = "10.0.1.10"


def spawner_site(tmp_path, aws, example_text):
    """The published build of an aws platform, and its network, launch templates and outputs in moto."""
    platform = validate_text(example_text.replace("target: local ", "target: aws   "))
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    for index, zone in enumerate(("us-west-2a", "us-west-2b")):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{index + 1}.0/24", AvailabilityZone=zone)
        subnets[zone] = subnet["Subnet"]["SubnetId"]
        ec2.create_tags(Resources=[subnets[zone]], Tags=[{"Key": "platform", "Value": PLATFORM},
                                                         {"Key": "tier", "Value": "private"}])
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    workers = tmp_path / "build" / "workers"
    for path, data in render_workers(platform, "aws").items():
        (tmp_path / "build" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "build" / path).write_bytes(data)
        template = json.loads(data)
        ec2.create_launch_template(LaunchTemplateName=template["launch_template_name"],
                                   LaunchTemplateData={"ImageId": image, "InstanceType": template["instance_type"]})
    keys = {name: f"key-of-{name}" for name in platform.environments}
    (tmp_path / "build" / "environments").mkdir(parents=True)
    (tmp_path / "build" / "environments" / "wheels.json").write_text(json.dumps(keys))  # as apply writes it
    iam = aws.client("iam")
    iam.create_role(RoleName=f"{PLATFORM}-worker-none", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName=f"{PLATFORM}-worker-none")
    iam.add_role_to_instance_profile(InstanceProfileName=f"{PLATFORM}-worker-none", RoleName=f"{PLATFORM}-worker-none")
    outputs = tmp_path / "build" / "outputs.json"
    group = ec2.create_security_group(GroupName=f"{PLATFORM}-notebooks", Description="notebooks", VpcId=vpc)
    outputs.write_text(json.dumps({
        "hub_private_ip": HUB_IP, "artifacts_bucket": f"{PLATFORM}-artifacts-123456789012",
        "worker_instance_profile_by_user": {"alice": f"{PLATFORM}-worker-none"},
        "security_group_ids": {"notebooks": group["GroupId"]},
    }))
    return SimpleNamespace(data=hub_data(platform, "aws"), workers=workers, outputs=outputs, subnets=subnets,
                           ec2=ec2, secrets=aws.client("secretsmanager"), notebooks_group=group["GroupId"])


def aws_spawner(spawner_site, aws, user: str = "alice", **options) -> VMSpawner:
    data = spawner_site.data
    spawner = VMSpawner(
        user=SimpleNamespace(name=user, escaped_name=user, url=f"/user/{user}/"),
        hub=SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api", base_url="/hub/"),
        profiles=data["profiles"], environments=data["environments"],
        entitlements={name: {k: u[k] for k in ("profiles", "environments", "default_profile")}
                      for name, u in data["users"].items()},
        budgets={name: u["budget"] for name, u in data["users"].items() if u["budget"]},
        platform_name=PLATFORM, templates_dir=str(spawner_site.workers), outputs_file=str(spawner_site.outputs),
        poll_every=0.05, attach_timeout=30,
    )
    spawner.api_token = TOKEN
    spawner.user_options = options
    spawner.machines = AWSMachines(aws.region, endpoint_url=aws.url, platform=PLATFORM)
    spawner.homes = AWSHomeVolumes(aws.region, PLATFORM, endpoint_url=aws.url)
    spawner.machine_secrets = MachineSecrets(aws.region, PLATFORM, endpoint_url=aws.url)
    return spawner


def ec2_described(spawner_site, instance_id: str) -> dict:
    return spawner_site.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def secret_names(spawner_site) -> list[str]:
    return [s["Name"] for s in spawner_site.secrets.list_secrets()["SecretList"]]

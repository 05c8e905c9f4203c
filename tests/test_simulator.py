"""The machine simulator: moto's instances booted in namespaces, security groups as packet filters.

Real parts: moto's server, network namespaces, nftables, a debootstrap'd Debian root (built
on first use, then cached), Debian's python3 and boto3 inside. Runs as root (CI does); skips
elsewhere, saying why.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.simulator import Simulator, simulator_unavailable
from tests.support.simulator.capacity import CapacityProxy
from tests.support.simulator.probes import connect, launch, wait_listening

pytestmark = [pytest.mark.slow, pytest.mark.skipif(simulator_unavailable() is not None,
                                                   reason=simulator_unavailable() or "")]

SERVE = """#!/bin/sh
cd /tmp
nohup python3 -m http.server 8000 >/var/log/http-8000.log 2>&1 &
nohup python3 -m http.server 8001 >/var/log/http-8001.log 2>&1 &
"""

# The same two servers, as systemd units started through the systemctl stand-in.
SERVE_AS_UNITS = """#!/bin/sh
for port in 8000 8001; do
cat >/etc/systemd/system/web$port.service <<UNIT
[Unit]
Description=test server on $port
[Service]
WorkingDirectory=/tmp
Environment=PYTHONUNBUFFERED=1
ExecStart=/usr/bin/python3 -m http.server $port
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now web$port.service
done
"""


@pytest.fixture
def ec2(moto_server):  # noqa: F811
    moto_server.reset()
    return moto_server.client("ec2")


@pytest.fixture
def subnet(ec2) -> dict:
    return next(s for s in ec2.describe_subnets()["Subnets"] if s["AvailabilityZone"] == "us-west-2a")


@pytest.fixture
def sim(moto_server, tmp_path):  # noqa: F811
    with Simulator(moto_server, tmp_path / "sim") as simulator:
        yield simulator


def _group(ec2, vpc_id: str, name: str) -> str:
    return ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc_id)["GroupId"]


def test_security_groups_filter_traffic_between_instances(ec2, subnet, sim):
    vpc = subnet["VpcId"]
    clients, servers = _group(ec2, vpc, "clients"), _group(ec2, vpc, "servers")
    ec2.authorize_security_group_ingress(GroupId=servers, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "UserIdGroupPairs": [{"GroupId": clients}]}])
    other_zone = next(s for s in ec2.describe_subnets()["Subnets"] if s["AvailabilityZone"] == "us-west-2b")
    a = launch(ec2, subnet["SubnetId"], SERVE, [clients])
    b = launch(ec2, other_zone["SubnetId"], SERVE_AS_UNITS, [servers])  # routed between subnets
    box_a, box_b = sim.wait_running(a), sim.wait_running(b)

    described = {i["InstanceId"]: i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    for box in (box_a, box_b):
        assert box.ip == described[box.instance_id]["PrivateIpAddress"]
        shown = subprocess.run(["ip", "-n", box.ns, "-4", "-o", "addr", "show", "eth0"],
                               capture_output=True, text=True, check=True).stdout
        assert f"inet {box.ip}/20" in shown  # the subnet's prefix (172.31.0.0/20, 172.31.16.0/20)
    assert box_a.ip.startswith("172.31.") and box_b.ip.startswith("172.31.")
    assert box_a.gateway == "172.31.0.1" and box_b.gateway == "172.31.16.1"
    wait_listening(box_a, 8000)
    wait_listening(box_b, 8000)
    wait_listening(box_b, 8001)
    assert box_b.exec(["systemctl", "is-active", "web8000"]).stdout.strip() == "active"

    assert connect(box_a, box_b.ip, 8000) == "open"      # servers admits clients on 8000
    assert connect(box_a, box_b.ip, 8001) == "timeout"   # ...and nothing else: dropped, as EC2 does
    assert connect(box_b, box_a.ip, 8000) == "timeout"   # clients admits nobody
    # Within an instance everything is open (loopback), as on a VM.
    assert connect(box_b, "127.0.0.1", 8001) == "open"
    fetched = box_a.exec(["python3", "-c", f"import urllib.request; print(urllib.request.urlopen("
                                           f"'http://{box_b.ip}:8000/', timeout=10).status)"])
    assert fetched.stdout.strip() == "200", fetched.stderr

    # A rule added later reaches the running instance's filter.
    ec2.authorize_security_group_ingress(GroupId=servers, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8001, "ToPort": 8001, "IpRanges": [{"CidrIp": f"{box_a.ip}/32"}]}])
    sim.sync()
    assert connect(box_a, box_b.ip, 8001) == "open"


def test_the_vpc_routes_nowhere_outside(ec2, subnet, sim):
    box = sim.wait_running(launch(ec2, subnet["SubnetId"]))
    vpc = sim.vpc.name
    routes = subprocess.run(["ip", "-n", vpc, "route", "show"], capture_output=True, text=True, check=True).stdout
    assert "default" not in routes
    assert routes.strip().splitlines() == ["172.31.0.0/20 dev br0 proto kernel scope link src 172.31.0.1"]
    # Route lookups send nothing: an outside address has no route from the VPC namespace.
    outside = subprocess.run(["ip", "-n", vpc, "route", "get", "192.0.2.10"], capture_output=True, text=True)
    assert outside.returncode != 0 and "unreachable" in outside.stderr.lower()
    links = subprocess.run(["ip", "-n", vpc, "-o", "link", "show"], capture_output=True, text=True).stdout
    assert sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines()) == ["br0", "lo", "sim0"]
    forward = subprocess.run(["ip", "netns", "exec", vpc, "nft", "list", "chain", "inet", "sim_vpc", "forward"],
                             capture_output=True, text=True, check=True).stdout
    assert "policy drop" in forward and 'iifname "br0" oifname "br0" accept' in forward
    nat = subprocess.run(["ip", "netns", "exec", vpc, "nft", "list", "ruleset"], capture_output=True, text=True)
    assert "nat" not in nat.stdout and "masquerade" not in nat.stdout
    # The host has neither the bridge nor any of the VPC's addresses.
    host = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    assert "172.31.0.1/" not in host and f"{box.ip}/" not in host


def _instance_profile(moto_server, name: str) -> None:  # noqa: F811
    iam = moto_server.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "ec2.amazonaws.com"}}]}
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)


def test_instance_reaches_moto_through_the_endpoint_with_imds_role_credentials(moto_server, ec2, subnet, sim):  # noqa: F811
    _instance_profile(moto_server, "hub")
    user_data = """#!/usr/bin/python3
import json, os, urllib.request
import boto3

def imds(path, token):
    request = urllib.request.Request("http://169.254.169.254" + path, headers={"X-aws-ec2-metadata-token": token})
    return urllib.request.urlopen(request, timeout=5).read().decode()

put = urllib.request.Request("http://169.254.169.254/latest/api/token", method="PUT",
                             headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
token = urllib.request.urlopen(put, timeout=5).read().decode()
instance_id = imds("/latest/meta-data/instance-id", token)
try:
    urllib.request.urlopen("http://169.254.169.254/latest/meta-data/instance-id", timeout=5)
    v1 = "answered"
except urllib.error.HTTPError as error:
    v1 = error.code
session = boto3.Session()  # no keys anywhere: the SDK finds the role's through the IMDS
endpoint = os.environ["AWS_ENDPOINT_URL"]
ec2 = session.client("ec2", endpoint_url=endpoint)
ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "booted", "Value": "yes"}])
me = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
caller = session.client("sts", endpoint_url=endpoint).get_caller_identity()["Arn"]
print("RESULT", json.dumps({
    "instance_id": instance_id, "imdsv1": v1, "credentials": session.get_credentials().method,
    "ip": me["PrivateIpAddress"], "local_ipv4": imds("/latest/meta-data/local-ipv4", token),
    "zone": imds("/latest/meta-data/placement/availability-zone", token), "caller": caller,
    "role": imds("/latest/meta-data/iam/security-credentials/", token)}), flush=True)
"""
    instance = launch(ec2, subnet["SubnetId"], user_data, IamInstanceProfile={"Name": "hub"})
    box = sim.wait_running(instance)
    result = _wait_result(box)
    assert result["instance_id"] == instance
    assert result["imdsv1"] == 401  # IMDSv2 only, as the platform's launch templates set
    assert result["credentials"] == "iam-role"
    assert result["role"] == "hub" and ":assumed-role/hub/" in result["caller"]
    assert result["ip"] == result["local_ipv4"] == box.ip
    assert result["zone"] == "us-west-2a"
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance]}])["Tags"]
    assert {"Key": "booted", "Value": "yes"} in [{"Key": t["Key"], "Value": t["Value"]} for t in tags]


def _wait_result(box, timeout: float = 120.0) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = box.console_log.read_text()
        for line in log.splitlines():
            if line.startswith("RESULT "):
                return json.loads(line.removeprefix("RESULT "))
        if "user data exited with" in log:
            break
        time.sleep(0.2)
    raise AssertionError(f"user data gave no result:\n{box.console_log.read_text()}")


def test_launches_from_inside_an_instance_meet_injected_capacity_errors(moto_server, ec2, subnet, tmp_path):  # noqa: F811
    """The hub VM's own launches go through the capacity proxy when the simulator is given it."""
    image = ec2.describe_images()["Images"][0]["ImageId"]
    zones = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}
    user_data = f"""#!/usr/bin/python3
import json, os
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
ec2 = boto3.client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL"], config=Config(retries={{"max_attempts": 0}}))
outcome = {{}}
for zone, subnet in (("us-west-2a", "{zones['us-west-2a']}"), ("us-west-2b", "{zones['us-west-2b']}")):
    try:
        ec2.run_instances(ImageId="{image}", MinCount=1, MaxCount=1, InstanceType="m5.large", SubnetId=subnet)
        outcome[zone] = "launched"
    except ClientError as error:
        outcome[zone] = error.response["Error"]["Code"]
print("RESULT", json.dumps(outcome), flush=True)
"""
    with CapacityProxy(moto_server) as proxy, Simulator(moto_server, tmp_path / "sim", api_url=proxy.url) as sim:
        proxy.refuse(zone="us-west-2a", instance_type="m5.large")
        _instance_profile(moto_server, "launcher")
        box = sim.wait_running(launch(ec2, subnet["SubnetId"], user_data, image_id=image, InstanceType="t3.small",
                                      IamInstanceProfile={"Name": "launcher"}))
        result = _wait_result(box)
    assert result == {"us-west-2a": "InsufficientInstanceCapacity", "us-west-2b": "launched"}
    assert proxy.refused == [("us-west-2a", "m5.large", False)]

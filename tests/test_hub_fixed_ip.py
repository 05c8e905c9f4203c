"""The hub's fixed private address (modules/aws/hub.py, network.py): a replaced hub takes its
predecessor's address, so machines that ask the hub (dead-man switches, worker launchers)
find it again. Rendered checks, and the moto behaviour the e2e replacement relies on (a
real moto server, with tests/support/moto_main.py's fix: EC2 frees a terminated instance's
address). The replacement itself, through real Terraform, is in tests/test_aws_hub_e2e.py.
"""

from __future__ import annotations

import ipaddress
import json
import re

import pytest
from botocore.exceptions import ClientError

from modules.aws.network import hub_private_ip, subnet_cidrs
from render.terraform import synthesize_target
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.terraform import example_platform


@pytest.fixture(scope="module")
def stack() -> dict:
    (payload,) = synthesize_target(example_platform("aws", egress="none"), "aws").values()
    return json.loads(payload)


def test_the_hub_has_a_fixed_address_that_aws_lets_an_instance_have(stack):
    hub = stack["resource"]["aws_instance"]["hub"]
    assert hub["subnet_id"] == "${aws_subnet.private_0.id}"
    subnet = ipaddress.ip_network(stack["resource"]["aws_subnet"]["private_0"]["cidr_block"])
    address = ipaddress.ip_address(hub["private_ip"])
    assert address in subnet
    # AWS reserves the network address, the next three and the broadcast address
    reserved = {subnet[0], subnet[1], subnet[2], subnet[3], subnet[-1]}
    assert address not in reserved
    assert hub["private_ip"] == "10.40.15.254"  # the example's 10.40.0.0/16: first private subnet /20


@pytest.mark.parametrize(("vpc", "zones"), [("10.40.0.0/16", 2), ("10.0.0.0/24", 1), ("172.16.0.0/12", 3)])
def test_the_address_is_the_last_usable_one_of_the_first_private_subnet(vpc, zones):
    subnet = ipaddress.ip_network(subnet_cidrs(vpc, zones)[0][0])
    assert hub_private_ip(vpc, zones) == str(subnet.broadcast_address - 1)


def test_a_replacement_destroys_the_old_hub_first(stack):
    """create_before_destroy on the hub, or on anything that refers to it (Terraform then
    applies it to the hub too), would create the new hub while the old one holds the address."""
    resources = {f"{kind}.{name}": body for kind, named in stack["resource"].items() for name, body in named.items()}
    referring = {address for address, body in resources.items()
                 if re.search(r"\baws_instance\.hub\.", json.dumps(body))}
    assert referring == {"aws_lb_target_group_attachment.hub", "aws_lb_target_group_attachment.scheduler",
                         "aws_volume_attachment.hub_state"}  # the two load balancers and the state volume
    for address in {"aws_instance.hub", *referring}:
        lifecycle = resources[address].get("lifecycle", {})
        assert not lifecycle.get("create_before_destroy"), address


def test_a_terminated_instances_address_can_be_asked_for_again(moto_server):  # noqa: F811
    ec2 = moto_server.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.0.0/20")["Subnet"]["SubnetId"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    fixed = hub_private_ip("10.40.0.0/16", 2)

    def launch(**extra) -> dict:
        return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet, **extra)["Instances"][0]

    first = launch(PrivateIpAddress=fixed)
    assert first["PrivateIpAddress"] == fixed
    with pytest.raises(ClientError) as refused:  # taken while the first one runs
        launch(PrivateIpAddress=fixed)
    assert refused.value.response["Error"]["Code"] == "InvalidIPAddress.InUse"
    ec2.terminate_instances(InstanceIds=[first["InstanceId"]])
    second = launch(PrivateIpAddress=fixed)
    assert second["PrivateIpAddress"] == fixed and second["InstanceId"] != first["InstanceId"]
    # moto's own allocation still never hands a freed address to an instance that did not ask
    ec2.terminate_instances(InstanceIds=[second["InstanceId"]])
    others = [launch()["PrivateIpAddress"] for _ in range(3)]
    assert fixed not in others and len(set(others)) == 3

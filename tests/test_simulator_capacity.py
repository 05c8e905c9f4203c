"""Capacity errors injected in front of a real moto server, seen through boto3."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.moto_server import CREDENTIALS, moto_server  # noqa: F401  (pytest fixture)
from tests.support.simulator.capacity import CapacityProxy

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture
def proxied(moto_server):  # noqa: F811
    with CapacityProxy(moto_server) as proxy:
        ec2 = boto3.client("ec2", endpoint_url=proxy.url, region_name=moto_server.region, config=NO_RETRIES,
                           **CREDENTIALS)
        yield proxy, ec2


def _subnets(ec2) -> dict[str, str]:
    return {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}


def _image(ec2) -> str:
    return ec2.describe_images()["Images"][0]["ImageId"]


def test_refused_zone_gets_the_aws_error_and_other_zones_launch(proxied):
    proxy, ec2 = proxied
    subnets = _subnets(ec2)
    proxy.refuse(zone="us-west-2a")
    with pytest.raises(ClientError) as refused:
        ec2.run_instances(ImageId=_image(ec2), MinCount=1, MaxCount=1, InstanceType="m5.large",
                          SubnetId=subnets["us-west-2a"])
    error = refused.value.response
    assert error["Error"]["Code"] == "InsufficientInstanceCapacity"
    assert "m5.large" in error["Error"]["Message"] and "us-west-2a" in error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert proxy.refused == [("us-west-2a", "m5.large", False)]

    launched = ec2.run_instances(ImageId=_image(ec2), MinCount=1, MaxCount=1, InstanceType="m5.large",
                                 SubnetId=subnets["us-west-2b"])["Instances"][0]
    assert launched["Placement"]["AvailabilityZone"] == "us-west-2b"
    ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert launched["InstanceId"] in ids  # reads pass through to moto


def test_refusal_by_instance_type_and_market(proxied):
    proxy, ec2 = proxied
    proxy.refuse(instance_type="p3.2xlarge", spot=True)
    spot = {"MarketType": "spot"}
    with pytest.raises(ClientError, match="InsufficientInstanceCapacity"):
        ec2.run_instances(ImageId=_image(ec2), MinCount=1, MaxCount=1, InstanceType="p3.2xlarge",
                          Placement={"AvailabilityZone": "us-west-2c"}, InstanceMarketOptions=spot)
    on_demand = ec2.run_instances(ImageId=_image(ec2), MinCount=1, MaxCount=1, InstanceType="p3.2xlarge",
                                  Placement={"AvailabilityZone": "us-west-2c"})
    other_type = ec2.run_instances(ImageId=_image(ec2), MinCount=1, MaxCount=1, InstanceType="m5.large",
                                   Placement={"AvailabilityZone": "us-west-2c"}, InstanceMarketOptions=spot)
    assert on_demand["Instances"] and other_type["Instances"]
    assert proxy.refused == [("us-west-2c", "p3.2xlarge", True)]


def test_launch_template_request_is_judged_by_the_template(proxied):
    proxy, ec2 = proxied
    subnets = _subnets(ec2)
    template = ec2.create_launch_template(
        LaunchTemplateName="workers-gpu",
        LaunchTemplateData={"ImageId": _image(ec2), "InstanceType": "g5.xlarge"})["LaunchTemplate"]
    proxy.refuse(zone="us-west-2b", instance_type="g5.xlarge")
    with pytest.raises(ClientError, match="InsufficientInstanceCapacity"):
        ec2.run_instances(MinCount=1, MaxCount=1, SubnetId=subnets["us-west-2b"],
                          LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]})
    fallback = ec2.run_instances(MinCount=1, MaxCount=1, SubnetId=subnets["us-west-2a"],
                                 LaunchTemplate={"LaunchTemplateName": "workers-gpu"})
    assert fallback["Instances"][0]["InstanceType"] == "g5.xlarge"
    proxy.clear()
    assert ec2.run_instances(MinCount=1, MaxCount=1, SubnetId=subnets["us-west-2b"],
                             LaunchTemplate={"LaunchTemplateName": "workers-gpu"})["Instances"]


def _fleet(ec2, template_id: str, overrides: list[dict], spot: bool = True, count: int = 1) -> dict:
    return ec2.create_fleet(
        Type="instant",
        TargetCapacitySpecification={"TotalTargetCapacity": count,
                                     "DefaultTargetCapacityType": "spot" if spot else "on-demand"},
        LaunchTemplateConfigs=[{"LaunchTemplateSpecification": {"LaunchTemplateId": template_id, "Version": "$Latest"},
                                "Overrides": overrides}])


def test_instant_fleet_launches_from_the_options_left_and_lists_the_refused(proxied):
    proxy, ec2 = proxied
    subnets = _subnets(ec2)
    template = ec2.create_launch_template(
        LaunchTemplateName="workers", LaunchTemplateData={"ImageId": _image(ec2), "InstanceType": "m5.large"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    proxy.refuse(zone="us-west-2a", spot=True)
    overrides = [{"SubnetId": subnets["us-west-2a"]}, {"SubnetId": subnets["us-west-2b"]}]

    reply = _fleet(ec2, template, overrides, count=2)
    assert [e["ErrorCode"] for e in reply["Errors"]] == ["InsufficientInstanceCapacity"]
    assert reply["Errors"][0]["LaunchTemplateAndOverrides"]["Overrides"]["SubnetId"] == subnets["us-west-2a"]
    assert reply["Errors"][0]["Lifecycle"] == "spot"
    launched = [i for group in reply["Instances"] for i in group["InstanceIds"]]
    assert len(launched) == 2
    zones = {i["Placement"]["AvailabilityZone"] for r in ec2.describe_instances(InstanceIds=launched)["Reservations"]
             for i in r["Instances"]}
    assert zones == {"us-west-2b"}

    nothing_left = _fleet(ec2, template, overrides[:1])
    assert nothing_left.get("Instances", []) == [] and len(nothing_left["Errors"]) == 1
    assert nothing_left["FleetId"].startswith("fleet-")

    on_demand = _fleet(ec2, template, overrides[:1], spot=False)  # the rule is for spot only
    assert not on_demand.get("Errors") and on_demand["Instances"][0]["InstanceIds"]
    assert proxy.refused == [("us-west-2a", "m5.large", True)] * 2

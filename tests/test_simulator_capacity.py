"""Capacity errors injected in front of a real moto server, seen through boto3."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.moto_server import CREDENTIALS, running_moto
from tests.support.simulator.capacity import CapacityProxy

AMI = "ami-12c6146b"  # one of moto's built-in images


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """A real moto server for this module, stopped by PID at the end."""
    with running_moto(log=tmp_path_factory.mktemp("moto") / "moto_server.log") as server:
        yield server


def _ec2(url: str, region: str):
    # One attempt: the error must reach the caller as EC2 sends it, not be retried away.
    return boto3.client("ec2", endpoint_url=url, region_name=region, config=Config(retries={"total_max_attempts": 1,
                        "mode": "standard"}), **CREDENTIALS)


def _run(ec2, **kwargs) -> str:
    return ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, **kwargs)["Instances"][0]["InstanceId"]


def test_configured_zone_is_refused_and_other_zones_pass(moto):
    with CapacityProxy(moto, zones={"us-west-2a"}) as proxy:
        ec2 = _ec2(proxy.url, moto.region)
        with pytest.raises(ClientError) as refused:
            _run(ec2, InstanceType="m5.large", Placement={"AvailabilityZone": "us-west-2a"})
        error = refused.value.response["Error"]
        assert error["Code"] == "InsufficientInstanceCapacity"
        assert "m5.large" in error["Message"] and "us-west-2a" in error["Message"]
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500

        passed = _run(ec2, InstanceType="m5.large", Placement={"AvailabilityZone": "us-west-2b"})
        # It reached moto: the instance exists there, in the zone asked for.
        found = moto.client("ec2").describe_instances(InstanceIds=[passed])["Reservations"][0]["Instances"][0]
        assert found["Placement"]["AvailabilityZone"] == "us-west-2b"
        assert proxy.rules.refused == [("us-west-2a", "m5.large", "on-demand")]


def test_zone_is_taken_from_the_subnet(moto):
    subnets = moto.client("ec2").describe_subnets()["Subnets"]
    by_zone = {s["AvailabilityZone"]: s["SubnetId"] for s in subnets}
    with CapacityProxy(moto, zones={"us-west-2c"}) as proxy:
        ec2 = _ec2(proxy.url, moto.region)
        with pytest.raises(ClientError, match="InsufficientInstanceCapacity"):
            _run(ec2, SubnetId=by_zone["us-west-2c"])
        assert _run(ec2, SubnetId=by_zone["us-west-2a"]).startswith("i-")


def test_configured_instance_type_is_refused_in_every_zone(moto):
    with CapacityProxy(moto, instance_types={"p3.2xlarge"}) as proxy:
        ec2 = _ec2(proxy.url, moto.region)
        for zone in ("us-west-2a", "us-west-2b"):
            with pytest.raises(ClientError, match="InsufficientInstanceCapacity"):
                _run(ec2, InstanceType="p3.2xlarge", Placement={"AvailabilityZone": zone})
        assert _run(ec2, InstanceType="t3.micro").startswith("i-")
        # Other calls pass through untouched.
        assert ec2.describe_availability_zones()["AvailabilityZones"]


def test_spot_capacity_is_refused_and_on_demand_passes(moto):
    """What a spot-with-on-demand-fallback launcher meets; the type comes from the launch template."""
    template = moto.client("ec2").create_launch_template(
        LaunchTemplateName="workers", LaunchTemplateData={"ImageId": AMI, "InstanceType": "c5.xlarge"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    with CapacityProxy(moto, markets={"spot"}) as proxy:
        ec2 = _ec2(proxy.url, moto.region)
        spot = {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time"}}
        with pytest.raises(ClientError) as refused:
            ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": template},
                              InstanceMarketOptions=spot)
        assert refused.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
        assert "c5.xlarge" in refused.value.response["Error"]["Message"]
        launched = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": template})
        assert launched["Instances"][0]["InstanceType"] == "c5.xlarge"
        assert [market for _, _, market in proxy.rules.refused] == ["spot"]

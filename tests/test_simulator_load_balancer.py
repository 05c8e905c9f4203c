"""The simulated load balancer: moto's listeners as local listeners, its group as a traffic source.

"Hub only from the load balancer": the hub answers through the load balancer and refuses
(drops) another instance that connects to it directly.
"""

from __future__ import annotations

import http.client
import time
import urllib.request
from urllib.parse import urlparse

import pytest

from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.simulator import Simulator, simulator_unavailable
from tests.support.simulator.probes import connect, launch, wait_listening

pytestmark = [pytest.mark.slow, pytest.mark.skipif(simulator_unavailable() is not None,
                                                   reason=simulator_unavailable() or "")]

HUB = """#!/bin/sh
mkdir -p /srv/www && echo "hub $(hostname)" > /srv/www/health
cd /srv/www && nohup python3 -m http.server 8000 >/var/log/hub.log 2>&1 &
"""


def test_hub_answers_only_through_the_load_balancer(moto_server, tmp_path):  # noqa: F811
    moto_server.reset()
    ec2, elb = moto_server.client("ec2"), moto_server.client("elbv2")
    subnets = {s["AvailabilityZone"]: s for s in ec2.describe_subnets()["Subnets"]}
    vpc = subnets["us-west-2a"]["VpcId"]

    def group(name: str) -> str:
        return ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]

    lb_group, hub_group, others = group("lb"), group("hub"), group("others")
    ec2.authorize_security_group_ingress(GroupId=hub_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "UserIdGroupPairs": [{"GroupId": lb_group}]}])
    ec2.authorize_security_group_ingress(GroupId=others, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": hub_group}]}])

    with Simulator(moto_server, tmp_path) as sim:
        hub = launch(ec2, subnets["us-west-2b"]["SubnetId"], HUB, [hub_group])
        outsider = launch(ec2, subnets["us-west-2a"]["SubnetId"], "", [others])
        balancer = elb.create_load_balancer(
            Name="front", Subnets=[subnets["us-west-2a"]["SubnetId"], subnets["us-west-2b"]["SubnetId"]],
            SecurityGroups=[lb_group], Scheme="internet-facing", Type="application")["LoadBalancers"][0]
        target_group = elb.create_target_group(Name="hub", Protocol="HTTP", Port=8000, VpcId=vpc,
                                               TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=target_group, Targets=[{"Id": hub, "Port": 8000}])
        elb.create_listener(LoadBalancerArn=balancer["LoadBalancerArn"], Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": target_group}])
        elb.create_listener(LoadBalancerArn=balancer["LoadBalancerArn"], Protocol="HTTP", Port=8080,
                            DefaultActions=[{"Type": "redirect", "RedirectConfig": {
                                "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}])
        hub_box, outsider_box = sim.wait_running(hub), sim.wait_running(outsider)
        wait_listening(hub_box, 8000)
        front = sim.wait_load_balancer("front", 80)

        body = _get_when_routed(front + "/health")
        assert body == f"hub ip-{hub_box.ip.replace('.', '-')}\n"
        # The hub admits the load balancer's group only: the outsider is dropped, though the
        # outsider's own group admits the hub.
        assert connect(outsider_box, hub_box.ip, 8000) == "timeout"
        assert connect(hub_box, outsider_box.ip, 22) == "refused"  # open to the hub, nothing listens

        redirect = urlparse(sim.wait_load_balancer("front", 8080))
        connection = http.client.HTTPConnection(redirect.hostname, redirect.port, timeout=10)
        connection.request("GET", "/hub/login?next=%2F", headers={"Host": "hub.example.org"})
        reply = connection.getresponse()
        assert reply.status == 301
        assert reply.getheader("Location") == "https://hub.example.org:443/hub/login?next=%2F"
        connection.close()

        ec2.terminate_instances(InstanceIds=[hub])
        sim.wait_stopped(hub)
        with pytest.raises(OSError):  # no target left: the load balancer closes the connection
            urllib.request.urlopen(front + "/health", timeout=10).read()


def _get_when_routed(url: str, timeout: float = 60.0) -> str:
    """The body at `url` once the load balancer's rules and the hub's filter are in place."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

"""The dead-man switch on machines the layer launches, in the machine simulator: a machine
whose hub does not answer powers itself off and, launched with the shutdown behaviour
`terminate`, is terminated (moto shows it); one whose hub answers keeps running. And the
simulator's guest power-off does what EC2 does for either shutdown behaviour.

Real parts: moto's server, the machines layer, the watchdog unit run by the instance's
own python3 (Debian's) in its own network namespace, the "hub" a real HTTP server in
another instance; the guest's poweroff is the simulator's stand-in (no kernel to halt).
"""

from __future__ import annotations

import time

import pytest

from deploy.cloud.aws import AWSMachines
from deploy.cloud.deadman import UNIT, DeadMan
from deploy.cloud.machines import MachineSpec
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.simulator import Simulator, simulator_unavailable
from tests.support.simulator.probes import first_image, launch, wait_listening

pytestmark = [pytest.mark.slow, pytest.mark.skipif(simulator_unavailable() is not None,
                                                   reason=simulator_unavailable() or "")]

TEMPLATE = "oceanlab-small"
HUB = """#!/bin/sh
cd /tmp
nohup python3 -m http.server 8000 >/var/log/hub.log 2>&1 &
"""
AFTER, EVERY = 3.0, 0.5  # the test's short setting (the default is 15 min)


@pytest.fixture
def cloud(moto_server, monkeypatch):  # noqa: F811
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    moto_server.reset()
    ec2 = moto_server.client("ec2")
    subnet = next(s for s in ec2.describe_subnets()["Subnets"] if s["AvailabilityZone"] == "us-west-2a")
    group = ec2.create_security_group(GroupName="hub", Description="hub", VpcId=subnet["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "IpRanges": [{"CidrIp": subnet["CidrBlock"]}]}])
    ec2.create_launch_template(LaunchTemplateName=TEMPLATE,
                               LaunchTemplateData={"ImageId": first_image(ec2), "InstanceType": "t3.micro"})
    machines = AWSMachines(region=moto_server.region, endpoint_url=moto_server.url,
                           subnets={"us-west-2a": subnet["SubnetId"]})
    return moto_server, ec2, subnet, group, machines


def _state(ec2, instance_id: str) -> str:
    (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0]["State"]["Name"]


def _until(what: str, check, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} within {timeout} s")


def _worker(name: str, hub_url: str) -> MachineSpec:
    return MachineSpec(name=name, template=TEMPLATE, user_data="#!/bin/sh\necho the worker starts\n",
                       tags={"platform": "oceanlab", "role": "worker", "budget": "ocean"},
                       deadman=DeadMan(hub_url, after_seconds=AFTER, every_seconds=EVERY))


def test_a_machine_whose_hub_is_gone_terminates_itself_and_one_whose_hub_answers_runs_on(cloud, tmp_path):
    moto, ec2, subnet, group, machines = cloud
    with Simulator(moto, tmp_path) as sim:
        hub = sim.wait_running(launch(ec2, subnet["SubnetId"], HUB, group_ids=[group]))
        wait_listening(hub, 8000)

        # First the machine whose hub answers: its watchdog then runs longer than the other's.
        kept = machines.launch(_worker("oceanlab-kept", f"http://{hub.ip}:8000/"))
        kept_box = sim.wait_running(kept.id)
        _until("the kept machine's watchdog is active",
               lambda: kept_box.exec(["systemctl", "is-active", UNIT]).stdout.strip() == "active")
        hub_log = hub.root / "var/log/hub.log"
        _until("the hub is asked by the kept machine", lambda: kept_box.ip in hub_log.read_text())
        assert "the worker starts" in kept_box.console_log.read_text()  # its own user data ran too

        # Then one whose hub never answers (nothing is let in on that port).
        orphan = machines.launch(_worker("oceanlab-orphan", f"http://{hub.ip}:8001/"))
        sim.wait_running(orphan.id)
        _until("the orphan is terminated", lambda: _state(ec2, orphan.id) in ("shutting-down", "terminated"))
        sim.wait_stopped(orphan.id)
        assert sim.shutdowns[orphan.id] == "terminate"

        # The kept machine's watchdog has run longer than AFTER seconds, asking all along.
        assert _state(ec2, kept.id) == "running" and kept.id in sim.sandboxes and kept.id not in sim.shutdowns
        assert kept_box.exec(["systemctl", "is-active", UNIT]).stdout.strip() == "active"
        log = kept_box.root / f"var/log/units/{UNIT}.log"
        assert "powering off" not in (log.read_text() if log.exists() else "")


def test_the_guest_power_off_does_what_the_shutdown_behaviour_says(cloud, tmp_path):
    moto, ec2, subnet, _, _ = cloud
    with Simulator(moto, tmp_path) as sim:
        terminating = launch(ec2, subnet["SubnetId"], "#!/bin/sh\nshutdown -h now\n",
                             InstanceInitiatedShutdownBehavior="terminate")
        stopping = launch(ec2, subnet["SubnetId"], "#!/bin/sh\npoweroff\n")  # EC2's default: stop
        for instance_id in (terminating, stopping):
            _until(f"{instance_id} powers off", lambda i=instance_id: i in sim.shutdowns)
            sim.wait_stopped(instance_id)
        assert sim.shutdowns == {terminating: "terminate", stopping: "stop"}
        assert _state(ec2, terminating) in ("shutting-down", "terminated")
        assert _state(ec2, stopping) in ("stopping", "stopped")

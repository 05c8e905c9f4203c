"""EBS volumes in the simulator: an attached volume with a `mount-point` tag is mounted there
inside the instance; what one instance writes, the next instance the volume is attached to
reads (the hub's state surviving a replaced hub depends on it). Units' output goes where
`StandardOutput=append:` says, and `KillMode=process` stops only the main process.
"""

from __future__ import annotations

import time

import pytest

from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.simulator import Simulator, simulator_unavailable
from tests.support.simulator.probes import launch

pytestmark = [pytest.mark.slow, pytest.mark.skipif(simulator_unavailable() is not None,
                                                   reason=simulator_unavailable() or "")]

UNIT = """#!/bin/sh
mkdir -p /etc/systemd/system
cat > /etc/systemd/system/keeper.service <<'UNIT'
[Service]
ExecStart=/bin/sh -c 'setsid sleep 600 & echo started; exec sleep 600'
KillMode=process
StandardOutput=append:/var/log/keeper/keeper.log
UNIT
systemctl enable --now keeper
"""


def _until(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := check()):
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_volume_data_outlives_the_instance(moto_server, tmp_path):  # noqa: F811
    moto_server.reset()
    ec2 = moto_server.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]
    volume = ec2.create_volume(AvailabilityZone=subnet["AvailabilityZone"], Size=1, TagSpecifications=[
        {"ResourceType": "volume", "Tags": [{"Key": "mount-point", "Value": "/var/lib/state"}]}])["VolumeId"]
    untagged = ec2.create_volume(AvailabilityZone=subnet["AvailabilityZone"], Size=1)["VolumeId"]
    with Simulator(moto_server, tmp_path) as sim:
        first = launch(ec2, subnet["SubnetId"], UNIT)
        box = sim.wait_running(first)
        ec2.attach_volume(VolumeId=volume, InstanceId=first, Device="/dev/xvdf")
        ec2.attach_volume(VolumeId=untagged, InstanceId=first, Device="/dev/xvdg")
        _until(lambda: box.exec(["mountpoint", "-q", "/var/lib/state"]).returncode == 0)
        assert box.exec(["sh", "-c", "echo kept > /var/lib/state/ledger"]).returncode == 0
        assert (tmp_path / "volumes" / volume / "ledger").read_text() == "kept\n"
        assert not (tmp_path / "volumes" / untagged).exists()

        # the unit's output file, and a restart that keeps the process it started in its own session
        _until(lambda: "started" in box.exec(["cat", "/var/log/keeper/keeper.log"]).stdout)
        before = set(box.exec(["pgrep", "-x", "sleep"]).stdout.split())
        assert len(before) == 2
        assert box.exec(["systemctl", "restart", "keeper"]).returncode == 0
        # the old main process is gone, its detached child is not; the new start made two more
        after = set(_until(lambda: (p := box.exec(["pgrep", "-x", "sleep"]).stdout.split()) and len(p) == 3 and p))
        assert len(before & after) == 1

        ec2.detach_volume(VolumeId=volume, InstanceId=first)  # as Terraform does before it replaces the instance
        ec2.terminate_instances(InstanceIds=[first])
        sim.wait_stopped(first)
        second = launch(ec2, subnet["SubnetId"], "")
        box = sim.wait_running(second)
        ec2.attach_volume(VolumeId=volume, InstanceId=second, Device="/dev/xvdf")
        _until(lambda: box.exec(["cat", "/var/lib/state/ledger"]).stdout == "kept\n")

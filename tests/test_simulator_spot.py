"""The simulator reclaims a spot instance as EC2 does (`Simulator.interrupt_spot`): the
interruption notice in the instance's metadata, read from inside the instance (IMDSv2),
404 before; the instance terminated through moto once the notice ran out."""

from __future__ import annotations

import json

import pytest

from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.simulator import Simulator, simulator_unavailable
from tests.support.simulator.probes import launch

pytestmark = [pytest.mark.slow, pytest.mark.skipif(simulator_unavailable() is not None,
                                                   reason=simulator_unavailable() or "")]

SPOT = {"InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time"}}}
# What a program on the instance does: a token, then the notice item (prints the status, then the body).
_ASK = """
import sys, urllib.error, urllib.request
put = urllib.request.Request("http://169.254.169.254/latest/api/token", method="PUT",
                             headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
token = urllib.request.urlopen(put, timeout=5).read().decode()
get = urllib.request.Request("http://169.254.169.254" + sys.argv[1], headers={"X-aws-ec2-metadata-token": token})
try:
    with urllib.request.urlopen(get, timeout=5) as answer:
        print(answer.status); print(answer.read().decode())
except urllib.error.HTTPError as error:
    print(error.code)
"""


def _ask(box, path: str) -> tuple[int, str]:
    done = box.exec(["python3", "-c", _ASK, path])
    assert done.returncode == 0, done.stderr
    status, _, body = done.stdout.partition("\n")
    return int(status), body.strip()


def test_a_spot_instance_gets_the_notice_then_is_terminated(moto_server, tmp_path):  # noqa: F811
    moto_server.reset()
    ec2 = moto_server.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    with Simulator(moto_server, tmp_path) as sim:
        spot, regular = launch(ec2, subnet, **SPOT), launch(ec2, subnet)
        box = sim.wait_running(spot)
        sim.wait_running(regular)
        assert _ask(box, "/latest/meta-data/spot/instance-action") == (404, "")

        with pytest.raises(ValueError, match="not a spot instance"):
            sim.interrupt_spot(regular, notice_seconds=1)

        at = sim.interrupt_spot(spot, notice_seconds=30)
        status, body = _ask(box, "/latest/meta-data/spot/instance-action")
        assert status == 200
        assert json.loads(body) == {"action": "terminate", "time": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
        assert _ask(box, "/latest/meta-data/spot/termination-time") == (200, at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        described = ec2.describe_instances(InstanceIds=[spot])["Reservations"][0]["Instances"][0]
        assert described["State"]["Name"] == "running"  # the notice first: still running

        sim.wait_stopped(spot, timeout=120)
        states = {i["InstanceId"]: i["State"]["Name"]
                  for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
        assert states[spot] == "terminated" and states[regular] == "running"
        ec2.terminate_instances(InstanceIds=[regular])

"""Budgets and gateway restarts on the simulated AWS, end to end (the session's
`aws_platform`: the hub VM booted by the machine simulator, its gateway launching
schedulers and workers as EC2 instances in moto, each booted in a sandbox of its own).
From this process (alice's laptop), through the load balancer only:

- a budget with little money left refuses alice's new cluster and names itself;
- the budget spent: `on_exhausted: stop` terminates every instance tagged with it (her
  cluster's, and one the gateway does not know) in one metering pass;
- the gateway SIGKILLed on the hub VM while alice's cluster runs (started and computed on
  from her laptop, on instances booted with the platform's tiny environments: `aws_tiny` of
  tests/support/cloud_fixtures.py), then started again (the unit's Restart=always: the
  simulator's systemctl does not restart units, so the test does, after stopping what the
  dead process left in its group, as systemd's control-group kill does): the cluster is adopted and computes
  again from the laptop, nothing is launched twice, its usage intervals go on (the same
  rows, still open), and an instance nobody knows is terminated.

The budget's earlier spending is written into the hub VM's ledger (a closed interval: the
month's money would otherwise take a month to spend) and removed again at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.aws_platform import AwsPlatform
from tests.support.bootstrap import NAME
from tests.support.budget_e2e import user_gateway
from tests.support.cloud_e2e import aws_instances, aws_tags, eventually, gateway_up, laptop_steps
from tests.support.gateway_client import Gateway
from tests.support.hub_e2e import PASSWORDS, Session
from tests.support.hub_vm import intervals, kill_gateway, ledger, start_gateway

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

def _until(check: Callable[[], object], timeout: float, what: str, diagnose: Callable[[], str] = lambda: ""):
    return eventually(check, timeout, lambda: f"timed out waiting for {what}\n{diagnose()}")


def _submit(platform: AwsPlatform, gateway: Gateway, **options) -> str:
    try:
        return gateway.submit(**options)
    except Exception as error:
        raise AssertionError(f"{error!r}\n{_gateway_log(platform)}") from error


def _stray(platform: AwsPlatform, cluster: str) -> str:
    """An instance tagged as one of the gateway's workers, of a cluster the gateway never had."""
    ec2 = platform.server.client("ec2")
    subnet = ec2.describe_subnets(Filters=[{"Name": "tag:platform", "Values": [NAME]},
                                           {"Name": "tag:tier", "Values": ["private"]}])["Subnets"][0]["SubnetId"]
    tags = {"platform": NAME, "role": "worker", "cluster": cluster, "budget": "ocean", "user": "carol"}
    return ec2.run_instances(
        LaunchTemplate={"LaunchTemplateName": f"{NAME}-small"}, MinCount=1, MaxCount=1, SubnetId=subnet,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )["Instances"][0]["InstanceId"]


def _stop_all(platform: AwsPlatform, user: str) -> None:
    """Stop every cluster of `user` (a failed start leaves no instance behind)."""
    gateway = user_gateway(platform, user)
    try:
        for cluster in gateway.list_clusters():
            gateway.stop_cluster(cluster.name)
    finally:
        gateway.close()
    _until(lambda: not aws_instances(platform, user=user), 300, f"{user}'s instances to go")


def _gateway_log(platform: AwsPlatform) -> str:
    return platform.diagnose(platform.hub_instance())


def test_a_spent_budget_refuses_by_name_and_stop_terminates_its_instances(aws_platform: AwsPlatform):
    platform = aws_platform
    alice = user_gateway(platform, "alice")
    try:
        running = _submit(platform, alice, profile="small", workers=1)
        launched = _until(lambda: len(aws_instances(platform, cluster=running)) == 2 and aws_instances(
            platform, cluster=running), 300, "alice's scheduler and worker instances", lambda: _gateway_log(platform))
        assert {aws_tags(i)["role"] for i in launched} == {"scheduler", "worker"}
        assert all(aws_tags(i)["budget"] == "ocean" and aws_tags(i)["user"] == "alice" for i in launched)

        ledger(platform, "spend-to", "ocean", "500", "0.02")  # 2 cents left: not 10 minutes of anything
        with pytest.raises(Exception, match=r"budget 'ocean' refused") as refused:
            alice.submit(profile="small")
        assert "cannot keep what runs" in str(refused.value) or "exhausted" in str(refused.value)
        assert len(aws_instances(platform, cluster=running)) == 2  # what runs is not stopped before 100 %

        ghost = _stray(platform, "ocean-e2e-unknown")
        _until(lambda: aws_instances(platform, cluster="ocean-e2e-unknown"), 60, "the stray instance")
        ledger(platform, "spend-to", "ocean", "500", "-0.01")  # spent: on_exhausted: stop
        doomed = {i["InstanceId"] for i in launched} | {ghost}
        _until(lambda: not aws_instances(platform, budget="ocean"), 120,
               f"every ocean instance ({', '.join(sorted(doomed))}) to be terminated", lambda: _gateway_log(platform))
        gateway_log = (platform.sim.sandboxes[platform.hub_instance()].root
                       / "var/log/graticule/gateway.log").read_text(errors="replace")
        assert f"Stopping cluster {running}: stopped by graticule: budget 'ocean' is exhausted" in gateway_log
        assert "instances of budget ocean" in gateway_log
        _until(lambda: all(row["ended_at"] for row in intervals(platform, running)), 120, "the intervals to close")
    finally:
        ledger(platform, "forget", "ocean")
        alice.close()


def test_a_gateway_killed_on_the_hub_vm_adopts_the_running_cluster_which_keeps_computing(
        aws_tiny: AwsPlatform, laptop, tmp_path):
    platform = aws_tiny
    config = tmp_path / "laptop-config"
    config.mkdir()
    laptop_step = laptop_steps(platform, laptop, config)

    _until(lambda: gateway_up(platform), 300, "the gateway through the load balancer", lambda: _gateway_log(platform))
    assert Session(platform.front, "alice").login().status_code == 302
    laptop_step("login", platform.front, "alice", stdin=PASSWORDS["alice"] + "\n")
    name = None
    try:
        try:
            started = laptop_step("start")  # Cluster(profile="small", n_workers=2), computed on, left running
        except AssertionError:
            print(_gateway_log(platform))
            _stop_all(platform, "alice")
            raise
        name = started["name"]
        assert started["sum"] == sum(range(100)) and started["workers"] == 2
        before = {i["InstanceId"] for i in aws_instances(platform, cluster=name)}
        assert len(before) == 3
        rows = _until(lambda: [r for r in intervals(platform, name) if r["machine_id"]] if len(
            [r for r in intervals(platform, name) if r["machine_id"]]) == 3 else None, 120,
            "the intervals to know their instances", lambda: _gateway_log(platform))
        assert {r["machine_id"] for r in rows} == before

        kill_gateway(platform)
        ghost = _stray(platform, "forgotten-e2e")
        start_gateway(platform)

        _until(lambda: not aws_instances(platform, cluster="forgotten-e2e"), 300,
               f"the unknown instance {ghost} to be terminated", lambda: _gateway_log(platform))
        _until(lambda: gateway_up(platform), 300, "the restarted gateway", lambda: _gateway_log(platform))
        again = laptop_step("compute", name)  # reconnected by name: the same scheduler, through the new proxy
        assert again["sum"] == sum(range(10))
        assert {i["InstanceId"] for i in aws_instances(platform, cluster=name)} == before  # nothing launched again
        after = intervals(platform, name)
        assert sorted((r["id"], r["machine_id"]) for r in after) == sorted((r["id"], r["machine_id"]) for r in rows)
        assert all(r["ended_at"] is None for r in after)  # the same intervals go on, none doubled

        laptop_step("stop", name)
        _until(lambda: not aws_instances(platform, cluster=name), 300, "the cluster's instances to go")
        _until(lambda: all(r["ended_at"] for r in intervals(platform, name)), 120, "the intervals to close")
        name = None
    finally:
        if name is not None:  # a failed test leaves no cluster behind
            print(_gateway_log(platform))
            laptop_step("stop", name)
            _until(lambda: not aws_instances(platform, cluster=name), 300, f"{name} left instances")

"""Budgets and gateway restarts on the simulated AWS, end to end (the session's
`aws_platform`: the hub VM booted by the machine simulator, its gateway launching
schedulers and workers as EC2 instances in moto, each booted in a sandbox of its own).
From this process (alice's laptop), through the load balancer only:

- a budget with little money left refuses alice's new cluster and names itself;
- the budget spent: `on_exhausted: stop` terminates every instance tagged with it (her
  cluster's, and one the gateway does not know) in one metering pass;
- the gateway SIGKILLed on the hub VM while alice's cluster runs (started and computed on
  from her laptop, on instances booted with the platform's tiny environments: the cluster
  e2e's fixtures), then started again (the unit's Restart=always: the simulator's systemctl
  does not restart units, so the test does, after stopping what the dead process left in
  its group, as systemd's control-group kill does): the cluster is adopted and computes
  again from the laptop, nothing is launched twice, its usage intervals go on (the same
  rows, still open), and an instance nobody knows is terminated.

The budget's earlier spending is written into the hub VM's ledger (a closed interval: the
month's money would otherwise take a month to spend) and removed again at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import requests
from dask_gateway.auth import JupyterHubAuth

from tests.support.aws_platform import AwsPlatform
from tests.support.bootstrap import NAME
from tests.support.gateway_client import Gateway
from tests.support.hub_e2e import PASSWORDS, Session
from tests.test_aws_cluster_e2e import WAIT, laptop, tiny  # noqa: F401  (fixtures: tiny environments, the laptop)
from tests.test_laptop_e2e import on_laptop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

GATEWAY_UNIT = "graticule-gateway.service"
VENV_PYTHON = "/opt/graticule/venv/bin/python"
SEEDED = "e2e-earlier-spending"  # the cluster name of the written spending

# Run on the hub VM by its own Python, on the gateway's ledger (the state volume).
_LEDGER = f"""
import json, sys
from sqlalchemy import delete, select, update
from deploy.ledger import Ledger, Process, month_of, queries
from deploy.ledger.models import AlertSent, BudgetPeriod, UsageInterval as U
ledger = Ledger.open(state_dir="/var/lib/graticule")
action, args = sys.argv[1], sys.argv[2:]
now = ledger.clock()
if action == "spend-to":  # spending earlier this month, so that `left` USD remain of `limit`
    budget, limit, left = args[0], float(args[1]), float(args[2])
    with ledger.writing() as conn:
        spent = queries.spent(conn, budget, month_of(now), now)
        usd = limit - left - spent
        start = max(month_of(now).starts_at, now - 60)
        process = Process("carol", budget, "{SEEDED}", f"spent-{{now}}", "small", "worker", 0, 0,
                          usd * 3600 / (now - start))
        row = ledger.open_interval(conn, process, start)
        conn.execute(update(U).where(U.id == row).values(ended_at=now, heartbeat_at=now, end_reason="e2e"))
elif action == "forget":  # the written spending, and what it set off, gone again
    budget = args[0]
    with ledger.writing() as conn:
        conn.execute(delete(U).where(U.cluster == "{SEEDED}"))
        conn.execute(delete(AlertSent).where(AlertSent.budget == budget, AlertSent.month == month_of(now).name))
        conn.execute(update(BudgetPeriod).where(BudgetPeriod.budget == budget).values(exhausted_at=None))
elif action == "intervals":
    with ledger.reading() as conn:
        rows = conn.execute(select(U.id, U.process, U.machine_id, U.ended_at).where(U.cluster == args[0]))
        print(json.dumps([dict(row._mapping) for row in rows]))
"""


def _ledger(platform: AwsPlatform, *args: str) -> str:
    done = platform.sim.sandboxes[platform.hub_instance()].exec([VENV_PYTHON, "-c", _LEDGER, *args], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _intervals(platform: AwsPlatform, cluster: str) -> list[dict]:
    return json.loads(_ledger(platform, "intervals", cluster))


def _until(check: Callable[[], object], timeout: float, what: str, diagnose: Callable[[], str] = lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}\n{diagnose()}")


def _gateway_up(platform: AwsPlatform) -> bool:
    try:  # through the load balancer and the hub's proxy (config sync may be restarting it after a boot)
        return requests.get(f"{platform.front}/services/dask-gateway/api/health", timeout=10).status_code == 200
    except requests.RequestException:
        return False


def _gateway(platform: AwsPlatform, user: str) -> Gateway:
    _until(lambda: _gateway_up(platform), 300, "the gateway through the load balancer", lambda: _gateway_log(platform))
    session = Session(platform.front, user)
    assert session.login().status_code == 302
    return Gateway(address=f"{platform.front}/services/dask-gateway", proxy_address=platform.scheduler,
                   auth=JupyterHubAuth(api_token=session.new_token()))


def _submit(platform: AwsPlatform, gateway: Gateway, **options) -> str:
    try:
        return gateway.submit(**options)
    except Exception as error:
        raise AssertionError(f"{error!r}\n{_gateway_log(platform)}") from error


def _instances(platform: AwsPlatform, **tags: str) -> list[dict]:
    filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in {"platform": NAME, **tags}.items()]
    answer = platform.server.client("ec2").describe_instances(Filters=filters)
    return [i for r in answer["Reservations"] for i in r["Instances"] if i["State"]["Name"] in ("pending", "running")]


def _tags(instance: dict) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}


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
    gateway = _gateway(platform, user)
    try:
        for cluster in gateway.list_clusters():
            gateway.stop_cluster(cluster.name)
    finally:
        gateway.close()
    _until(lambda: not _instances(platform, user=user), 300, f"{user}'s instances to go")


def _gateway_log(platform: AwsPlatform) -> str:
    return platform.diagnose(platform.hub_instance())


def test_a_spent_budget_refuses_by_name_and_stop_terminates_its_instances(aws_platform: AwsPlatform):
    platform = aws_platform
    alice = _gateway(platform, "alice")
    try:
        running = _submit(platform, alice, profile="small", workers=1)
        launched = _until(lambda: len(_instances(platform, cluster=running)) == 2 and _instances(
            platform, cluster=running), 300, "alice's scheduler and worker instances", lambda: _gateway_log(platform))
        assert {_tags(i)["role"] for i in launched} == {"scheduler", "worker"}
        assert all(_tags(i)["budget"] == "ocean" and _tags(i)["user"] == "alice" for i in launched)

        _ledger(platform, "spend-to", "ocean", "500", "0.02")  # 2 cents left: not 10 minutes of anything
        with pytest.raises(Exception, match=r"budget 'ocean' refused") as refused:
            alice.submit(profile="small")
        assert "cannot keep what runs" in str(refused.value) or "exhausted" in str(refused.value)
        assert len(_instances(platform, cluster=running)) == 2  # what runs is not stopped before 100 %

        ghost = _stray(platform, "ocean-e2e-unknown")
        _until(lambda: _instances(platform, cluster="ocean-e2e-unknown"), 60, "the stray instance")
        _ledger(platform, "spend-to", "ocean", "500", "-0.01")  # spent: on_exhausted: stop
        doomed = {i["InstanceId"] for i in launched} | {ghost}
        _until(lambda: not _instances(platform, budget="ocean"), 120,
               f"every ocean instance ({', '.join(sorted(doomed))}) to be terminated", lambda: _gateway_log(platform))
        gateway_log = (platform.sim.sandboxes[platform.hub_instance()].root
                       / "var/log/graticule/gateway.log").read_text(errors="replace")
        assert f"Stopping cluster {running}: stopped by graticule: budget 'ocean' is exhausted" in gateway_log
        assert "instances of budget ocean" in gateway_log
        _until(lambda: all(row["ended_at"] for row in _intervals(platform, running)), 120, "the intervals to close")
    finally:
        _ledger(platform, "forget", "ocean")
        alice.close()


def test_a_gateway_killed_on_the_hub_vm_adopts_the_running_cluster_which_keeps_computing(
        tiny: AwsPlatform, laptop, tmp_path):  # noqa: F811
    platform = tiny
    hub = platform.sim.sandboxes[platform.hub_instance()]
    config = tmp_path / "laptop-config"
    config.mkdir()
    here = {"GRATICULE_GATEWAY_SCHEDULER_URL": platform.scheduler, "LAPTOP_WAIT": str(WAIT)}

    def laptop_step(*step: str, stdin: str = "") -> dict:
        return on_laptop(laptop, config, *step, stdin=stdin, **here)

    _until(lambda: _gateway_up(platform), 300, "the gateway through the load balancer", lambda: _gateway_log(platform))
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
        before = {i["InstanceId"] for i in _instances(platform, cluster=name)}
        assert len(before) == 3
        rows = _until(lambda: [r for r in _intervals(platform, name) if r["machine_id"]] if len(
            [r for r in _intervals(platform, name) if r["machine_id"]]) == 3 else None, 120,
            "the intervals to know their instances", lambda: _gateway_log(platform))
        assert {r["machine_id"] for r in rows} == before

        pid_file = f"/run/sim-units/{GATEWAY_UNIT}.pid"
        killed = hub.exec(["sh", "-c", f"pid=$(cat {pid_file}); kill -KILL $pid && sleep 1 && "
                                       f"kill -KILL -- -$pid 2>/dev/null; echo $pid"])
        assert killed.returncode == 0, killed.stdout + killed.stderr
        ghost = _stray(platform, "forgotten-e2e")
        assert hub.exec(["systemctl", "start", GATEWAY_UNIT]).returncode == 0

        _until(lambda: not _instances(platform, cluster="forgotten-e2e"), 300,
               f"the unknown instance {ghost} to be terminated", lambda: _gateway_log(platform))
        _until(lambda: _gateway_up(platform), 300, "the restarted gateway", lambda: _gateway_log(platform))
        again = laptop_step("compute", name)  # reconnected by name: the same scheduler, through the new proxy
        assert again["sum"] == sum(range(10))
        assert {i["InstanceId"] for i in _instances(platform, cluster=name)} == before  # nothing launched again
        after = _intervals(platform, name)
        assert sorted((r["id"], r["machine_id"]) for r in after) == sorted((r["id"], r["machine_id"]) for r in rows)
        assert all(r["ended_at"] is None for r in after)  # the same intervals go on, none doubled

        laptop_step("stop", name)
        _until(lambda: not _instances(platform, cluster=name), 300, "the cluster's instances to go")
        _until(lambda: all(r["ended_at"] for r in _intervals(platform, name)), 120, "the intervals to close")
        name = None
    finally:
        if name is not None:  # a failed test leaves no cluster behind
            print(_gateway_log(platform))
            laptop_step("stop", name)
            _until(lambda: not _instances(platform, cluster=name), 300, f"{name} left instances")

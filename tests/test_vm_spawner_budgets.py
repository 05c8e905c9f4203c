"""Notebook servers on VMs are paid by their user's budget: the VM spawner against a real
moto server and a real SQLite ledger, with the rendered gateway spec as its policy.

- a server's machine is admitted before anything is made, its interval follows the
  instance (EC2's launch time, the profile's on-demand price, the profile's cores) and is
  closed when the server stops;
- a budget that cannot pay refuses the spawn with a message naming it (the message
  JupyterHub shows the user), and nothing is made;
- `max_cores` counts servers with the budget's Dask machines;
- a user without a budget gets a server all the same, unmetered and untagged (as on the
  local target).

Instances in moto do not boot (tests/test_aws_notebook_e2e.py runs them in the simulator).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select
from tornado import web

from deploy.budgets.servers import server_key
from deploy.hub import server_meter
from deploy.ledger import Ledger, ManualClock, Process, month_of
from deploy.ledger.models import UsageInterval as U
from render.gateway_config import render_gateway
from render.validate import validate_text
from tests.support.vm_spawner_site import aws_spawner, ec2_described, secret_names

GUEST = """  guests:
    profiles: [small]
    environments: [default]
"""


@pytest.fixture
def example_text(example_text: str) -> str:
    """The example with `dave`, in a group that grants a profile and names no budget."""
    text = example_text.replace("\nusers:\n", f"{GUEST}\nusers:\n  - name: dave\n    groups: [guests]\n", 1)
    return text.replace("target: local ", "target: aws   ")


@pytest.fixture
def metered(vm_site, aws, tmp_path, monkeypatch, example_text):
    """`make(user, **options)`: a spawner whose servers are metered in tmp_path's ledger, whose
    clock is two minutes behind (an admission long before the launch)."""
    monkeypatch.delenv("GRATICULE_LEDGER_URL", raising=False)
    server_meter._ledgers[str(tmp_path)] = Ledger.open(state_dir=tmp_path, clock=ManualClock(time.time() - 120))
    policy = tmp_path / "build" / "gateway" / "platform.json"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_bytes(render_gateway(validate_text(example_text), "aws")["gateway/platform.json"])

    def make(user: str = "alice", **options):
        spawner = aws_spawner(vm_site, aws, user, **options)
        spawner.policy_file, spawner.ledger_dir = str(policy), str(tmp_path)
        return spawner

    yield make
    server_meter._ledgers.pop(str(tmp_path)).close()


def _rows(tmp_path) -> list:
    ledger = server_meter._ledger(str(tmp_path))
    with ledger.reading() as conn:
        return list(conn.execute(select(U).order_by(U.id)))


def _spend(tmp_path, budget: str, usd: float, cores: float = 0.0, open_: bool = False) -> None:
    """Spending earlier this month (closed), or a Dask worker still holding `cores` (open)."""
    ledger: Ledger = server_meter._ledger(str(tmp_path))
    now = ledger.clock()
    start = max(month_of(now).starts_at, now - 60)
    with ledger.writing() as conn:
        process = Process("carol", budget, "earlier", f"w-{now}", "small", "worker", cores, 0,
                          usd * 3600 / (now - start))
        row = ledger.open_interval(conn, process, start)
        if not open_:
            conn.execute(U.__table__.update().where(U.id == row).values(ended_at=now, heartbeat_at=now))


def test_a_server_is_admitted_charged_from_its_launch_at_the_on_demand_price_and_closed_at_its_stop(
        vm_site, metered, tmp_path):
    spawner = metered("alice", profile="large")  # a spot profile: the server still pays on-demand
    asyncio.run(spawner.start())
    (row,) = _rows(tmp_path)
    instance = ec2_described(vm_site, spawner.machine_id)
    spec = spawner.meter().spec
    assert (row.cluster, row.process, row.role, row.user, row.budget) == (
        server_key("alice"), server_key("alice"), "notebook", "alice", "ocean")
    assert row.machine_id == spawner.machine_id and row.ended_at is None
    assert row.started_at == instance["LaunchTime"].timestamp()  # the launch, not the admission
    assert row.price_per_hour_usd == spec.profiles["large"].on_demand_per_hour_usd
    assert row.price_per_hour_usd > spec.profiles["large"].price_per_hour_usd  # more than the spot estimate
    assert row.cores == 16

    asyncio.run(spawner.stop())
    (row,) = _rows(tmp_path)
    assert row.ended_at is not None and row.end_reason == "server stopped"


def test_a_budget_that_cannot_pay_refuses_the_spawn_naming_itself_and_nothing_is_made(vm_site, metered, tmp_path):
    _spend(tmp_path, "ocean", 500 - 0.01)  # a cent left: not ten minutes of a $0.096/h server
    spawner = metered("alice", profile="small")
    with pytest.raises(web.HTTPError) as refused:
        asyncio.run(spawner.start())
    message = refused.value.jupyterhub_message  # what JupyterHub's spawn page shows her
    assert refused.value.status_code == 403
    assert message.startswith("budget 'ocean' refused this request") and "cannot keep what runs" in message
    assert vm_site.ec2.describe_instances()["Reservations"] == []
    assert vm_site.ec2.describe_volumes()["Volumes"] == []
    assert secret_names(vm_site) == []
    assert [r.cluster for r in _rows(tmp_path) if r.ended_at is None] == []


def test_max_cores_counts_notebook_servers_with_the_budgets_dask_machines(vm_site, metered, tmp_path):
    _spend(tmp_path, "bob-thesis", 0.0, cores=7, open_=True)  # bob's budget: max_cores 8, a 2-core server does not fit
    spawner = metered("bob", profile="small")
    with pytest.raises(web.HTTPError, match="over max_cores 8"):
        asyncio.run(spawner.start())
    assert vm_site.ec2.describe_instances()["Reservations"] == []


def test_a_user_without_a_budget_gets_an_unmetered_server_without_a_budget_tag(vm_site, metered, tmp_path):
    spawner = metered("dave", profile="small")
    asyncio.run(spawner.start())
    tags = {t["Key"]: t["Value"] for t in ec2_described(vm_site, spawner.machine_id)["Tags"]}
    assert (tags["user"], tags["role"]) == ("dave", "notebook") and "budget" not in tags
    assert _rows(tmp_path) == []  # nobody pays: not in the ledger
    asyncio.run(spawner.stop())
    assert ec2_described(vm_site, spawner.machine_id)["State"]["Name"] in ("shutting-down", "terminated")

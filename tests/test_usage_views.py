"""What the usage pages read from the ledger, on SQLite and a real PostgreSQL: a user's
view holds only their own rows, the daily spend adds up to `platform usage`'s month,
running clusters carry their cost so far, and admins see the alerts sent."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import insert

from deploy.budgets.daily import daily_spend
from deploy.budgets.policy import Policy
from deploy.budgets.report import usage_report
from deploy.hub.pages import views
from deploy.ledger import Ledger, ManualClock, Process, month_of
from deploy.ledger.models import AlertSent
from tests.support.ledger import MID_NOVEMBER, ledger_url, make_platform  # noqa: F401
from tests.support.postgres import postgres_server  # noqa: F401

pytestmark = pytest.mark.slow

BUDGETS = """\
team: {monthly_usd: 100, max_cores: 8}
solo: {monthly_usd: 10}
"""
HOUR = 3600.0


@pytest.fixture
def policy() -> Policy:
    # alice pays with `team`, bob with his own `solo`, carol has no budget.
    return Policy.from_platform(make_platform(BUDGETS))


def _start(ledger: Ledger, user: str, budget: str, cluster: str, process: str, role: str, price: float) -> None:
    with ledger.writing() as conn:
        process = Process(user, budget, cluster, process, "small", role, 1, 1 << 30, price)
        ledger.open_interval(conn, process, ledger.clock())


def _scene(ledger: Ledger, clock: ManualClock) -> None:
    """Yesterday alice ran c1 for two hours; bob runs c2 since an hour ago; alice c3 since now-30m."""
    clock.advance(-24 * HOUR)
    _start(ledger, "alice", "team", "c1", "c1", "scheduler", 3.6)
    _start(ledger, "alice", "team", "c1", "w1", "worker", 3.6)
    clock.advance(2 * HOUR)
    ledger.close_cluster("c1", "stopped")
    clock.advance(21 * HOUR)
    _start(ledger, "bob", "solo", "c2", "c2", "scheduler", 1.0)
    clock.advance(0.5 * HOUR)
    _start(ledger, "alice", "team", "c3", "c3", "scheduler", 7.2)
    _start(ledger, "alice", "team", "c3", "w3", "worker", 7.2)
    clock.advance(0.5 * HOUR)


def test_a_users_view_is_their_budget_with_their_row_only(ledger, clock, policy):
    _scene(ledger, clock)
    month = month_of(clock())
    report = usage_report(ledger, policy, month)
    team = next(b for b in report["budgets"] if b["name"] == "team")

    alice = views.budgets_for(ledger, policy, "alice", False, month)
    assert [b["name"] for b in alice] == ["team"]
    assert alice[0]["spent_usd"] == team["spent_usd"]  # the budget's figure is usage's
    assert [u["name"] for u in alice[0]["users"]] == ["alice"]

    bob = views.budgets_for(ledger, policy, "bob", False, month)
    assert [b["name"] for b in bob] == ["solo"] and "alice" not in repr(bob)
    assert views.budgets_for(ledger, policy, "carol", False, month) == []
    assert views.budgets_for(ledger, policy, "carol", True, month) == report["budgets"]


def test_daily_spend_adds_up_to_the_months_spend(ledger, clock, policy):
    _scene(ledger, clock)
    month = month_of(clock())
    daily = daily_spend(ledger, month, ["team", "solo"])
    report = {b["name"]: b for b in usage_report(ledger, policy, month)["budgets"]}
    assert daily["team"]["days"][0] == month.name + "-01"
    assert len(daily["team"]["days"]) == 15  # 1st to the 15th (MID_NOVEMBER is the 15th, noon)
    for budget in ("team", "solo"):
        total = sum(sum(values) for values in daily[budget]["users"].values())
        assert math.isclose(total, report[budget]["spent_usd"], abs_tol=1e-5)
    # c1 ran yesterday (the 14th) for 2 h at 7.2 USD/h for two processes: 14.4 USD that day.
    assert daily["team"]["users"]["alice"][13] == pytest.approx(14.4)
    assert daily_spend(ledger, month, ["team", "solo"], user="bob")["team"]["users"] == {}


def test_running_clusters_with_their_cost_so_far_and_owner(ledger, clock):
    _scene(ledger, clock)
    running = views.running_clusters(ledger)
    assert [c.name for c in running] == ["c2", "c3"]
    c2, c3 = running
    assert (c2.user, c2.budget, c2.workers) == ("bob", "solo", 0)
    assert c2.cost_usd == pytest.approx(1.0)  # one hour at 1 USD/h
    assert (c3.user, c3.workers, c3.profile) == ("alice", 1, "small")
    assert c3.cost_usd == pytest.approx(7.2)  # two processes, half an hour, 7.2 USD/h each
    assert [c.name for c in views.running_clusters(ledger, "alice")] == ["c3"]
    assert views.owner_of(ledger, "c3") == "alice"
    assert views.owner_of(ledger, "c1") is None  # stopped: nothing to stop


def test_only_admins_see_the_alerts_sent(ledger, clock, policy):
    _scene(ledger, clock)
    month = month_of(clock())
    with ledger.writing() as conn:
        conn.execute(
            insert(AlertSent).values(
                budget="solo", month=month.name, threshold=10, spent_usd=1.0, limit_usd=10, sent_at=clock(), mailed=True
            )
        )
    admin = views.page_data(ledger, policy, "carol", True)
    assert [(a["budget"], a["threshold"], a["mailed"]) for a in admin["alerts"]] == [("solo", 10, True)]
    assert views.page_data(ledger, policy, "bob", False)["alerts"] == []


def test_a_notebook_servers_machine_is_spending_but_no_cluster_to_list_count_or_stop(ledger, clock, policy):
    _scene(ledger, clock)
    _start(ledger, "alice", "team", "notebook:alice", "notebook:alice", "notebook", 0.5)
    clock.advance(HOUR)
    assert [c.name for c in views.running_clusters(ledger)] == ["c2", "c3"]
    assert views.owner_of(ledger, "notebook:alice") is None  # the hub stops servers, not the pages
    (team,) = [b for b in usage_report(ledger, policy)["budgets"] if b["name"] == "team"]
    assert team["clusters_running"] == 1 and team["cores_in_use"] == 3  # c3's two processes and the server
    assert team["spent_usd"] == pytest.approx(7.2 * 2 + 7.2 * 1.5 * 2 + 0.5)  # c1, c3, an hour of the server

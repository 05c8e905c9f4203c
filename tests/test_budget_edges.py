"""Budgets exactly at their edges: thresholds, 100%, max_cores, the money window, scaling,
what the policy reads, and what a refusal says.

SQLite ledger with a manual clock (charges are computed from the clock the test moves,
never from wall time); see tests/support/budgets.py. The same rules on PostgreSQL are in
tests/test_budgets.py; alerts by mail, the metering loop and the usage report are in
tests/test_budget_alerts.py.
"""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from sqlalchemy import select

from deploy.budgets import BudgetExceeded, Policy
from deploy.budgets.alerts import Alert
from deploy.budgets.report import format_report, usage_report
from deploy.ledger.models import BudgetPeriod
from render.gateway_config import render_gateway
from render.gateway_spec import GatewaySpec
from tests.support.budgets import PER_SECOND, TEAM, request, spend
from tests.support.ledger import DECEMBER_1, make_platform

# -- thresholds and 100% ------------------------------------------------------------------

pytest_plugins = ["tests.support.budget_fixtures"]  # the clock and make_budgets fixtures


def test_an_alert_fires_exactly_at_its_threshold_not_a_cent_before(make_budgets, clock):
    budgets = make_budgets(min_window_s=60)
    spend(budgets, clock, 499)  # 49.9%
    assert budgets.meter(set()).alerts == []
    spend(budgets, clock, 1)  # exactly 50%
    assert [alert.threshold for alert in budgets.meter(set()).alerts] == [50]


def test_exhaustion_is_exactly_at_100_percent(make_budgets, clock):
    budgets = make_budgets(min_window_s=60)
    spend(budgets, clock, 999)  # $9.99 of $10
    result = budgets.meter(set())
    assert result.exhausted == [] and [a.threshold for a in result.alerts] == [50, 80]
    budgets.admit(request("alice", "c1", price=0.0))  # a free process is still affordable
    budgets.cluster_stopped("c1")
    spend(budgets, clock, 1)  # exactly $10
    result = budgets.meter(set())
    assert result.exhausted == ["team"] and [a.threshold for a in result.alerts] == [100]
    with pytest.raises(BudgetExceeded, match=r"the budget is exhausted \(on_exhausted: stop\)"):
        budgets.admit(request("alice", "c2", price=0.0))


def test_at_100_percent_a_stop_budget_stops_only_its_running_clusters(make_budgets, clock):
    budgets = make_budgets(min_window_s=60)
    budgets.admit(request("alice", "c1", price=PER_SECOND))
    budgets.admit(request("bob", "c2", cores=1, price=0.0, cluster="c2"))  # solo pays for bob
    live = {("c1", "c1"), ("c2", "c2")}
    clock.advance(999)
    assert budgets.meter(live).to_stop == {}
    clock.advance(1)
    to_stop = budgets.meter(live).to_stop
    assert list(to_stop) == ["c1"]
    assert to_stop["c1"] == (
        "stopped by graticule: budget 'team' is exhausted (spent $10.00 of $10.00; on_exhausted: stop)"
    )


@pytest.mark.parametrize("on_exhausted", ["block_new", "warn"])
def test_other_exhaustion_policies_stop_nothing(make_budgets, clock, on_exhausted):
    budgets = make_budgets(f"team: {{monthly_usd: 10, on_exhausted: {on_exhausted}}}\nsolo: {{monthly_usd: 1}}\n")
    budgets.admit(request("alice", "c1", price=PER_SECOND))
    clock.advance(1000)
    result = budgets.meter({("c1", "c1")})
    assert result.exhausted == ["team"] and result.to_stop == {}


def test_the_time_a_budget_ran_out_is_recorded_once_and_reported(make_budgets, clock, caplog):
    caplog.set_level(logging.WARNING, "graticule.budgets")
    budgets = make_budgets()
    budgets.admit(request("alice", "c1", price=PER_SECOND))
    clock.advance(1000)
    ran_out = clock()
    budgets.meter({("c1", "c1")})
    clock.advance(500)
    budgets.meter({("c1", "c1")})  # still exhausted: the first time stays
    with budgets.ledger.reading() as conn:
        assert conn.scalars(select(BudgetPeriod.exhausted_at).where(BudgetPeriod.budget == "team")).all() == [ran_out]
    assert caplog.text.count("budget 'team' exhausted") == 1
    report = usage_report(budgets.ledger, budgets.policy)
    team, solo = report["budgets"]
    assert team["exhausted_at"] == "2026-11-15 12:16:40 UTC" and solo["exhausted_at"] is None
    text = format_report(report)
    assert "team: $15.00 of $10.00 (150.0%), 2/8 cores in use, 1 clusters running; " in text
    assert text.splitlines()[1].endswith("clusters running; exhausted 2026-11-15 12:16:40 UTC")


def test_a_new_month_starts_unexhausted_with_its_alerts_unfired(make_budgets, clock):
    budgets = make_budgets(min_window_s=60)
    clock.set(DECEMBER_1 - 2000)
    spend(budgets, clock, 1000)  # November: exactly $10
    assert budgets.meter(set()).exhausted == ["team"]
    clock.set(DECEMBER_1)
    budgets.admit(request("alice", "c1", price=0.0))  # December: a fresh $10
    result = budgets.meter({("c1", "c1")})
    assert result.exhausted == [] and result.alerts == []
    assert usage_report(budgets.ledger, budgets.policy)["budgets"][0]["exhausted_at"] is None


# -- max_cores and headroom ---------------------------------------------------------------


@pytest.mark.parametrize(("max_cores", "cores_each", "running"), [(8, 2, 4), (8, 1, 8), (1, 0.1, 10), (3, 0.5, 6)])
def test_headroom_is_zero_when_max_cores_is_fully_used(make_budgets, max_cores, cores_each, running):
    budgets = make_budgets(f"team: {{monthly_usd: 1000, max_cores: {max_cores}}}\nsolo: {{monthly_usd: 1}}\n")
    for n in range(running - 1):
        budgets.admit(request("alice", f"w{n}", cores=cores_each))
    assert budgets.headroom("alice", cores_each, 0.0) == 1
    budgets.admit(request("alice", "last", cores=cores_each))
    assert budgets.headroom("alice", cores_each, 0.0) == 0
    with pytest.raises(BudgetExceeded, match="over max_cores"):
        budgets.admit(request("alice", "one-more", cores=cores_each))
    budgets.stopped("c1", "last")
    assert budgets.headroom("alice", cores_each, 0.0) == 1


def test_headroom_is_never_negative_when_max_cores_shrank_below_what_runs(make_budgets):
    budgets = make_budgets()
    for n in range(4):
        budgets.admit(request("alice", f"w{n}"))  # 8 cores
    smaller = make_budgets("team: {monthly_usd: 10, max_cores: 4}\nsolo: {monthly_usd: 1}\n")
    smaller.ledger = budgets.ledger  # the same ledger, after platform.yaml lowered max_cores
    assert smaller.headroom("alice", 2, 0.0) == 0


def test_headroom_counts_what_the_money_allows_for_the_window(make_budgets, clock):
    budgets = make_budgets("team: {monthly_usd: 10}\nsolo: {monthly_usd: 1}\n", min_window_s=600)
    # $10 left pays $60/h for the 10-minute window
    assert budgets.headroom("alice", 2, 20.0) == 3  # exactly affordable
    assert budgets.headroom("alice", 2, 20.01) == 2
    budgets.admit(request("alice", "w1", price=20.0))
    assert budgets.headroom("alice", 2, 20.0) == 2  # what runs is paid for first
    assert budgets.headroom("alice", 2, 0.0) == 1_000_000  # free and uncapped: no limit
    capped = make_budgets(name="capped")
    assert capped.headroom("alice", 0, 0.0) == 1_000_000  # a process of no cores never fills max_cores
    clock.advance(1800)  # $10 spent
    assert budgets.headroom("alice", 2, 0.0) == 0


def test_warn_budgets_are_limited_by_cores_only(make_budgets, clock):
    budgets = make_budgets("team: {monthly_usd: 1, max_cores: 4, on_exhausted: warn}\nsolo: {monthly_usd: 1}\n")
    spend(budgets, clock, 3600)  # 3600% spent
    assert budgets.headroom("alice", 1, 100.0) == 4
    budgets.check_scale("alice", 1, 100.0, 4)
    with pytest.raises(BudgetExceeded, match="over max_cores 4"):
        budgets.check_scale("alice", 1, 100.0, 5)


def test_scaling_counts_cores_times_workers(make_budgets):
    budgets = make_budgets()
    for n in range(3):
        budgets.admit(request("alice", f"w{n}"))  # 6 of 8 cores
    budgets.check_scale("alice", 2, 0.0, 1)
    with pytest.raises(BudgetExceeded) as one:
        budgets.admit(request("alice", "w9", cores=3, price=0.5))
    assert "refused this request: 3 cores at $0.5/h would hold 9 cores, over max_cores 8" in str(one.value)
    with pytest.raises(BudgetExceeded) as refused:
        budgets.check_scale("alice", 2, 0.0, 2)
    assert "2 processes, 4 cores at $0/h would hold 10 cores, over max_cores 8" in str(refused.value)



def test_a_one_core_refusal_says_core(make_budgets):
    budgets = make_budgets()
    for n in range(8):
        budgets.admit(request("alice", f"w{n}", cores=1))
    with pytest.raises(BudgetExceeded, match=r"request: 1 core at \$0/h would hold 9 cores, over max_cores"):
        budgets.admit(request("alice", "w8", cores=1))


def test_scaling_down_is_never_refused_even_when_exhausted(make_budgets, clock):
    budgets = make_budgets()
    spend(budgets, clock, 1000)  # exactly $10: exhausted
    with pytest.raises(BudgetExceeded, match="exhausted"):
        budgets.check_scale("alice", 2, 1.0, 1)
    budgets.check_scale("alice", 2, 1.0, 0)  # to the same size
    budgets.check_scale("alice", 2, 1.0, -1)  # down


def test_scaling_money_counts_price_times_workers_for_the_window(make_budgets):
    budgets = make_budgets("team: {monthly_usd: 5}\nsolo: {monthly_usd: 1}\n", min_window_s=600)
    budgets.check_scale("alice", 1, 10.0, 3)  # $30/h for 10 minutes: exactly the $5 left
    with pytest.raises(BudgetExceeded) as refused:
        budgets.check_scale("alice", 1, 10.0, 4)
    assert "$5.00 left cannot keep what runs plus 4 processes, 4 cores at $40/h going for 10 min (needs $6.67)" in (
        str(refused.value)
    )


def test_the_default_window_is_ten_minutes(make_budgets, monkeypatch):
    monkeypatch.delenv("GRATICULE_BUDGET_MIN_WINDOW", raising=False)
    budgets = make_budgets("team: {monthly_usd: 5}\nsolo: {monthly_usd: 1}\n")
    budgets.admit(request("alice", "c1", cores=1, price=30.0))  # exactly $5 for 10 minutes
    with pytest.raises(BudgetExceeded, match="going for 10 min"):
        budgets.admit(request("alice", "c2", cores=1, price=0.01, cluster="c2"))


def test_the_window_from_the_environment_takes_a_duration_or_seconds(make_budgets, monkeypatch):
    monkeypatch.setenv("GRATICULE_BUDGET_MIN_WINDOW", "20m")
    monkeypatch.setenv("GRATICULE_METER_INTERVAL", "90")
    budgets = make_budgets("team: {monthly_usd: 5}\nsolo: {monthly_usd: 1}\n")
    assert (budgets.policy.min_window_s, budgets.policy.meter_interval_s) == (1200.0, 90.0)
    with pytest.raises(BudgetExceeded, match="going for 20 min"):
        budgets.admit(request("alice", "c1", cores=1, price=30.0))
    explicit = make_budgets("team: {monthly_usd: 5}\nsolo: {monthly_usd: 1}\n", min_window_s=600, name="other")
    explicit.admit(request("alice", "c1", cores=1, price=30.0))  # an explicit window beats the environment
    monkeypatch.setenv("GRATICULE_BUDGET_MIN_WINDOW", "")
    monkeypatch.delenv("GRATICULE_METER_INTERVAL")
    defaults = make_budgets(name="third").policy
    assert (defaults.min_window_s, defaults.meter_interval_s) == (600.0, 30.0)  # empty or unset: 10 min, 30 s


def test_the_gateway_reads_the_same_policy_from_the_rendered_platform(monkeypatch):
    monkeypatch.delenv("GRATICULE_BUDGET_MIN_WINDOW", raising=False)
    monkeypatch.delenv("GRATICULE_METER_INTERVAL", raising=False)
    platform = make_platform(TEAM, extra="integrations:\n  alerts: {email: [ops@example.org]}\n")
    rendered = json.loads(render_gateway(platform, "local")["gateway/platform.json"])
    assert Policy.from_gateway_spec(GatewaySpec.from_json(rendered)) == Policy.from_platform(platform)


def test_what_was_decided_cannot_be_changed_afterwards(make_budgets):
    budgets = make_budgets()
    alert = Alert("team", "2026-11", 50, 5.0, 10.0, "soon")
    for value, field in [
        (request("alice", "c1"), "cores"),
        (alert, "threshold"),
        (budgets.policy.budgets["team"], "monthly_usd"),
        (budgets.policy, "min_window_s"),
    ]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, 0)


def test_a_refusal_explains_itself_without_a_limit_or_a_cap():
    assert str(BudgetExceeded("no budget")) == "no budget"
    assert str(BudgetExceeded("full", "b")) == (
        "budget 'b' refused this request: full. Spent $0.00 of $0.00 this month (0%), 0 cores in use; "
        "the budget resets ."
    )
    message = str(BudgetExceeded("full", "b", spent_usd=1.0, limit_usd=0.0, cores_in_use=1.5, resets_at="soon"))
    assert message == (
        "budget 'b' refused this request: full. Spent $1.00 of $0.00 this month (0%), 1.5 cores in use; "
        "the budget resets soon."
    )

"""Budgets exactly at their edges: thresholds, 100%, max_cores, the money window, scaling,
mail that fails and is retried, and when a budget ran out.

SQLite ledger with a manual clock (charges are computed from the clock the test moves,
never from wall time); alerts go through a real SMTP server (aiosmtpd) on loopback.
The same rules on PostgreSQL are in tests/test_budgets.py.

Prices are chosen so that every figure is exact in binary floating point: a $10 budget
and a process at $36/h spend exactly $0.01 per second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import json
import logging

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from deploy.budgets import BudgetExceeded, Budgets, Policy, Request
from deploy.budgets.alerts import Alert, Mailer
from deploy.budgets.report import format_report, usage_report
from deploy.ledger import Ledger, ManualClock, Process
from deploy.ledger.models import AlertSent, BudgetPeriod
from render.gateway_config import render_gateway
from tests.support.ledger import DECEMBER_1, MID_NOVEMBER, make_platform
from tests.support.procs import free_port

TEAM = "team: {monthly_usd: 10, max_cores: 8, alerts: [50, 80, 100], on_exhausted: stop}\nsolo: {monthly_usd: 1}\n"
PER_SECOND = 36.0  # $/h: $0.01 a second, 1% of the team budget a second


def request(user: str, process: str, cores: float = 2, price: float = 0.0, cluster: str = "c1") -> Request:
    role = "scheduler" if process == cluster else "worker"
    return Request(user, cluster, process, "small", role, cores, 1 << 30, price)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MID_NOVEMBER)


@pytest.fixture
def make_budgets(tmp_path, clock):
    opened: list[Budgets] = []

    def make(budgets: str = TEAM, mailer: Mailer | None = None, name: str = "ledger", **policy) -> Budgets:
        ledger = Ledger.open(f"sqlite:///{tmp_path / name}.sqlite", clock=clock)
        guard = Budgets(ledger, Policy.from_platform(make_platform(budgets), **policy), mailer or Mailer(()))
        opened.append(guard)
        return guard

    yield make
    for guard in opened:
        guard.ledger.close()


def spend(budgets: Budgets, clock: ManualClock, seconds: float, price: float = PER_SECOND) -> None:
    """Record a past team process of `seconds` at `price` straight in the ledger (no admission
    decision): the spend is exact, and nothing of it runs afterwards."""
    process = Process("alice", "team", "spender", "spender", "small", "scheduler", 0, 0, price)
    with budgets.ledger.writing() as conn:
        budgets.ledger.open_interval(conn, process, clock())
    clock.advance(seconds)
    budgets.cluster_stopped("spender")


# -- thresholds and 100% ------------------------------------------------------------------


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
    assert Policy.from_gateway_platform(rendered) == Policy.from_platform(platform)


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


# -- alerts by mail -----------------------------------------------------------------------


class Inbox:
    """An SMTP server's handler that refuses the first `failures` messages (451: try later)."""

    def __init__(self) -> None:
        self.subjects: list[str] = []
        self.bodies: list[str] = []
        self.failures = 0

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        if self.failures:
            self.failures -= 1
            return "451 4.3.0 try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.subjects.append(message["Subject"])
        self.bodies.append(message.get_content().replace("\r\n", "\n"))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, Mailer(("ops@example.org",), host=controller.hostname, port=controller.port)
    finally:
        controller.stop()


def test_each_alert_is_mailed_once(make_budgets, clock, smtp):
    inbox, mailer = smtp
    budgets = make_budgets(mailer=mailer, min_window_s=60)
    budgets.admit(request("alice", "c1", price=PER_SECOND))
    for _ in range(3):
        clock.advance(300)  # 30%, 60%, 90%
        budgets.meter({("c1", "c1")})
    budgets.meter({("c1", "c1")})
    assert inbox.subjects == [
        "[budgettest] budget 'team' reached 50% for 2026-11",
        "[budgettest] budget 'team' reached 80% for 2026-11",
    ]
    assert inbox.bodies[0] == (
        "Budget 'team' has spent $6.00 of $10.00 in 2026-11 (60.0%), crossing the 50% alert.\n"
        "It resets 2026-12-01 00:00 UTC.\n"
    )


def test_an_alert_whose_mail_failed_is_retried_later_and_mailed_once(make_budgets, clock, smtp, caplog):
    inbox, mailer = smtp
    budgets = make_budgets(mailer=mailer, min_window_s=60)
    spend(budgets, clock, 600)  # 60%
    inbox.failures = 1
    assert [a.threshold for a in budgets.meter(set()).alerts] == [50]  # claimed and logged now
    assert inbox.subjects == [] and "could not mail budget alert" in caplog.text
    with budgets.ledger.reading() as conn:
        assert conn.scalars(select(AlertSent.mailed)).all() == [False]  # not lost
    assert budgets.meter(set()).alerts == []  # not a new alert: a retry
    assert inbox.subjects == ["[budgettest] budget 'team' reached 50% for 2026-11"]
    budgets.meter(set())
    assert len(inbox.subjects) == 1  # never twice
    assert caplog.text.count("crossing the 50% alert") == 1  # logged once, however often it is mailed


def test_a_restarted_gateway_mails_what_the_last_one_could_not(make_budgets, clock, smtp):
    inbox, mailer = smtp
    silent = make_budgets(min_window_s=60)  # no SMTP server configured: nothing is mailed
    assert not silent.mailer.enabled
    spend(silent, clock, 900)
    assert [a.threshold for a in silent.meter(set()).alerts] == [50, 80]
    restarted = Budgets(silent.ledger, silent.policy, mailer)
    assert restarted.meter(set()).alerts == []
    assert inbox.subjects == [
        "[budgettest] budget 'team' reached 50% for 2026-11",
        "[budgettest] budget 'team' reached 80% for 2026-11",
    ]
    restarted.meter(set())
    assert len(inbox.subjects) == 2


def test_the_smtp_server_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("GRATICULE_SMTP_HOST", "127.0.0.1")
    monkeypatch.delenv("GRATICULE_SMTP_PORT", raising=False)
    monkeypatch.delenv("GRATICULE_ALERTS_FROM", raising=False)
    mailer = Mailer(("ops@example.org",))
    assert (mailer.host, mailer.port, mailer.sender, mailer.enabled) == ("127.0.0.1", 25, "graticule@localhost", True)
    monkeypatch.setenv("GRATICULE_SMTP_PORT", "2525")
    assert Mailer(("ops@example.org",)).port == 2525
    assert not Mailer(()).enabled  # nobody to mail
    assert Mailer(()).send(Alert("team", "2026-11", 50, 5.0, 10.0, "soon"), "x") is False  # logged, not mailed
    monkeypatch.delenv("GRATICULE_SMTP_HOST")
    assert not Mailer(("ops@example.org",)).enabled  # nowhere to mail through


# -- the metering loop --------------------------------------------------------------------


def test_the_metering_loop_survives_a_failed_pass_and_stops_exhausted_clusters(make_budgets, clock, caplog):
    budgets = make_budgets()
    budgets.admit(request("alice", "c1", price=PER_SECOND))
    clock.advance(1000)
    calls = 0

    async def live():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("backend hiccup")
        return [("c1", "c1")]

    async def scenario() -> list[tuple[str, str]]:
        stopped: list[tuple[str, str]] = []
        done = asyncio.Event()

        def stop(cluster: str, reason: str) -> None:
            stopped.append((cluster, reason))
            done.set()

        loop = asyncio.create_task(budgets.metering_loop(live, stop, interval_s=0.001))
        try:
            await asyncio.wait_for(done.wait(), timeout=60)
        finally:
            loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        return stopped

    stopped = asyncio.run(scenario())
    assert stopped[0][0] == "c1" and "budget 'team' is exhausted" in stopped[0][1]
    assert "metering pass failed; retrying next interval" in caplog.text and calls >= 2


# -- the usage report ---------------------------------------------------------------------


def test_usage_report_per_budget_and_user_with_filters(make_budgets, clock):
    budgets = make_budgets(min_window_s=60)
    budgets.admit(request("alice", "c1", cores=2, price=PER_SECOND))
    budgets.admit(request("bob", "c2", cores=1, price=3.6, cluster="c2"))
    clock.advance(100)
    report = usage_report(budgets.ledger, budgets.policy)
    assert report["month"] == "2026-11" and report["resets_at"] == "2026-12-01 00:00 UTC"
    team, solo = report["budgets"]
    assert (team["name"], team["spent_usd"], team["percent"], team["cores_in_use"]) == ("team", 1.0, 10.0, 2.0)
    assert team["users"] == [{"name": "alice", "spent_usd": 1.0, "cores_in_use": 2.0, "clusters_running": 1}]
    assert (solo["spent_usd"], solo["percent"], solo["max_cores"], solo["on_exhausted"]) == (0.1, 10.0, None, "stop")
    only_bob = usage_report(budgets.ledger, budgets.policy, user="bob")
    assert [b["name"] for b in only_bob["budgets"]] == ["solo"]
    for name in ("team", "solo"):
        assert [b["name"] for b in usage_report(budgets.ledger, budgets.policy, budget=name)["budgets"]] == [name]
    text = format_report(report)
    assert text.splitlines() == [
        "usage for 2026-11 (UTC; budgets reset 2026-12-01 00:00 UTC)",
        "team: $1.00 of $10.00 (10.0%), 2/8 cores in use, 1 clusters running",
        "  alice: $1.00, 2 cores in use, 1 clusters running",
        "solo: $0.10 of $1.00 (10.0%), 1 cores in use, 1 clusters running",
        "  bob: $0.10, 1 cores in use, 1 clusters running",
    ]


def test_usage_of_a_budget_no_longer_declared_is_still_reported(make_budgets, clock):
    budgets = make_budgets(min_window_s=60)
    spend(budgets, clock, 100)
    removed = dataclasses.replace(budgets.policy, budgets={"solo": budgets.policy.budgets["solo"]})
    report = usage_report(budgets.ledger, removed)
    assert [b["name"] for b in report["budgets"]] == ["solo", "team"]
    team = report["budgets"][1]
    assert (team["limit_usd"], team["percent"], team["max_cores"], team["spent_usd"]) == (None, None, None, 1.0)
    assert "team: $1.00 of (budget no longer declared), 0 cores in use, 0 clusters running" in format_report(report)
    assert format_report({"month": "2026-11", "resets_at": "x", "budgets": []}).endswith("  no usage recorded")


def test_the_report_keeps_micro_dollars_and_hundredths_of_a_percent(make_budgets, clock):
    budgets = make_budgets()
    spend(budgets, clock, 17, price=0.00036)  # $0.0000017
    assert usage_report(budgets.ledger, budgets.policy)["budgets"][0]["spent_usd"] == 0.000002
    spend(budgets, clock, 1234.5, price=3.6)  # $1.2345 more: 12.3450017%
    team = usage_report(budgets.ledger, budgets.policy)["budgets"][0]
    assert (team["spent_usd"], team["users"][0]["spent_usd"], team["percent"]) == (1.234502, 1.234502, 12.35)


# -- the metering loop's contract: any awaitable, cancellation ------------------------------


class Awaited:
    """An awaitable that is not a coroutine (a backend may hand back futures)."""

    def __init__(self, value=None) -> None:
        self.value = value
        self.awaited = False

    def __await__(self):
        self.awaited = True
        yield from asyncio.sleep(0).__await__()
        return self.value


def test_the_metering_loop_awaits_any_awaitable_and_passes_its_own_interval(make_budgets, clock, caplog):
    budgets = make_budgets(meter_interval_s=0.001)
    budgets.admit(request("alice", "c1", price=PER_SECOND))
    clock.advance(1000)
    stops: list[Awaited] = []

    async def scenario() -> None:
        done = asyncio.Event()

        def stop(cluster: str, reason: str) -> Awaited:
            stops.append(Awaited())
            if len(stops) == 2:  # a second pass ran: the first one completed
                done.set()
            return stops[-1]

        loop = asyncio.create_task(budgets.metering_loop(lambda: Awaited([("c1", "c1")]), stop))
        try:
            await asyncio.wait_for(done.wait(), timeout=60)
        finally:
            loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop

    asyncio.run(scenario())
    assert all(awaitable.awaited for awaitable in stops[:1])
    assert "metering pass failed" not in caplog.text


def test_cancelling_the_metering_loop_mid_pass_ends_it(make_budgets):
    budgets = make_budgets()

    async def scenario() -> None:
        async def live():
            asyncio.current_task().cancel()
            await asyncio.sleep(0)  # the cancellation lands here, inside the pass
            return []

        loop = asyncio.create_task(budgets.metering_loop(live, lambda cluster, reason: None, interval_s=0.001))
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(loop, timeout=60)

    asyncio.run(scenario())

"""Budget alerts by mail (a real SMTP server, aiosmtpd, on loopback), the metering loop,
and the usage report; on a SQLite ledger with a manual clock (tests/support/budgets.py)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import select

from deploy.budgets import Budgets
from deploy.budgets.alerts import Alert, Mailer
from deploy.budgets.report import format_report, usage_report
from deploy.ledger.models import AlertSent
from tests.support.budgets import PER_SECOND, request, spend
from tests.support.inbox import running_inbox

# -- alerts by mail -----------------------------------------------------------------------

pytest_plugins = ["tests.support.budget_fixtures"]  # the clock and make_budgets fixtures


@pytest.fixture
def smtp():
    with running_inbox() as (inbox, controller):
        yield inbox, Mailer(("ops@example.org",), host=controller.hostname, port=controller.port)


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

"""Admission control, metering, exhaustion and alerts on SQLite and a real PostgreSQL.
Alerts go through a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from deploy.budgets import BudgetExceeded, Budgets, Policy, Request
from deploy.budgets.alerts import Mailer
from deploy.ledger import Ledger, ManualClock
from deploy.ledger.models import AlertSent, UsageInterval
from tests.support.ledger import DECEMBER_1, MID_NOVEMBER, ledger_url, make_platform, peak_cores  # noqa: F401
from tests.support.postgres import postgres_server  # noqa: F401
from tests.support.procs import free_port

pytestmark = pytest.mark.slow

BUDGETS = """\
team: {monthly_usd: 10, max_cores: 8, alerts: [50, 80, 100], on_exhausted: stop}
solo: {monthly_usd: 1, on_exhausted: block_new}
"""


def request(user: str, process: str, cluster: str | None = None, cores: float = 2, price: float = 3.6) -> Request:
    """Workers are named w*, in cluster c1 unless told; anything else is a cluster's scheduler."""
    cluster = cluster or ("c1" if process.startswith("w") else process)
    role = "scheduler" if process == cluster else "worker"
    return Request(user, cluster, process, "small", role, cores, 4 << 30, price)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MID_NOVEMBER)


@pytest.fixture
def make_budgets(ledger_url, clock):  # noqa: F811
    opened: list[Budgets] = []

    def make(budgets: str = BUDGETS, mailer: Mailer | None = None, **policy) -> Budgets:
        platform = make_platform(budgets)
        guard = Budgets(
            Ledger.open(ledger_url, clock=clock),
            Policy.from_platform(platform, **policy),
            mailer or Mailer((), host=""),
        )
        opened.append(guard)
        return guard

    yield make
    for guard in opened:
        guard.ledger.close()


def test_which_budget_pays_personal_then_group_else_none(make_budgets):
    budgets = make_budgets()
    assert budgets.budget_of("alice") == "team"  # from her group
    assert budgets.budget_of("bob") == "solo"  # his own budget wins over the group's
    assert budgets.budget_of("carol") is None
    with pytest.raises(BudgetExceeded, match="user 'carol' has no budget"):
        budgets.admit(request("carol", "c1"))


def test_max_cores_refusal_names_budget_spent_limit_cores_and_reset(make_budgets, clock):
    budgets = make_budgets()
    for n in range(4):
        budgets.admit(request("alice", f"w{n}", price=0.36))  # 8 cores in use
    clock.advance(1000)
    with pytest.raises(BudgetExceeded) as refused:
        budgets.admit(request("alice", "w4", price=0.36))
    message = str(refused.value)
    assert "budget 'team'" in message
    assert "over max_cores 8" in message
    assert "Spent $0.40 of $10.00 this month (4%)" in message
    assert "8 of 8 cores in use" in message
    assert "resets 2026-12-01 00:00 UTC" in message
    budgets.stopped("c1", "w0")
    budgets.admit(request("alice", "w4", price=0.36))  # room again


def test_money_must_cover_running_plus_request_for_the_minimum_window(make_budgets, clock):
    budgets = make_budgets(min_window_s=600)
    budgets.admit(request("alice", "w1", price=30.0))  # $5 per 10 minutes
    clock.advance(600)  # $5 spent, $5 left: w1 alone needs $5 for the next 10 min
    with pytest.raises(BudgetExceeded, match=r"\$5.00 left cannot keep what runs plus 2 cores at \$0.6/h going"):
        budgets.admit(request("alice", "w2", price=0.6))
    budgets.stopped("c1", "w1")
    budgets.admit(request("alice", "w2", price=0.6))  # $0.10 per window: fine
    with pytest.raises(BudgetExceeded):  # 1-minute window makes it affordable, 10 min does not
        budgets.check_scale("alice", 2, 30.0, 1)
    make_budgets(min_window_s=60).check_scale("alice", 2, 30.0, 1)


def test_a_retried_start_is_admitted_once(make_budgets):
    budgets = make_budgets()
    first = budgets.admit(request("alice", "w1"))
    assert budgets.admit(request("alice", "w1")) == first
    assert len(budgets.ledger.open_processes()) == 1


def test_exhausted_stop_budget_asks_to_stop_its_clusters_with_a_reason(make_budgets, clock):
    budgets = make_budgets(min_window_s=60)
    budgets.admit(request("alice", "c1", price=36.0))  # $0.01/s: $10 in 1000 s
    budgets.admit(request("bob", "c2", price=0.36))  # another budget: untouched
    clock.advance(999)
    assert budgets.meter({("c1", "c1"), ("c2", "c2")}).to_stop == {}
    clock.advance(2)
    result = budgets.meter({("c1", "c1"), ("c2", "c2")})
    assert list(result.to_stop) == ["c1"]
    assert "budget 'team' is exhausted" in result.to_stop["c1"] and "on_exhausted: stop" in result.to_stop["c1"]
    with pytest.raises(BudgetExceeded, match="the budget is exhausted"):
        budgets.admit(request("alice", "c3", price=0.0))


def test_block_new_keeps_running_clusters_but_admits_nothing(make_budgets, clock):
    budgets = make_budgets(min_window_s=60)
    budgets.admit(request("bob", "c2", price=3.6))  # solo: $1 in 1000 s
    clock.advance(1200)
    result = budgets.meter({("c2", "c2")})
    assert result.to_stop == {} and result.exhausted == ["solo"]
    assert budgets.ledger.open_processes() == [("c2", "c2")]
    with pytest.raises(BudgetExceeded, match=r"budget 'solo'.*exhausted.*block_new"):
        budgets.admit(request("bob", "c3", price=0.0))


def test_warn_only_alerts(make_budgets, clock):
    budgets = make_budgets("team: {monthly_usd: 1, alerts: [100], on_exhausted: warn}\nsolo: {monthly_usd: 1}\n")
    budgets.admit(request("alice", "c1", price=36.0))
    clock.advance(3600)  # 3600% of the budget
    result = budgets.meter({("c1", "c1")})
    assert result.to_stop == {} and [a.threshold for a in result.alerts] == [100]
    budgets.admit(request("alice", "c2", price=36.0))  # money never refuses a warn budget


def test_budgets_reset_at_the_start_of_the_month_utc(make_budgets, clock):
    budgets = make_budgets(min_window_s=60)
    clock.set(DECEMBER_1 - 2000)
    budgets.admit(request("bob", "c2", price=3.6))
    clock.set(DECEMBER_1 - 10)
    with pytest.raises(BudgetExceeded, match="resets 2026-12-01 00:00 UTC"):
        budgets.admit(request("bob", "c3", price=0.36))
    budgets.stopped("c2", "c2")
    clock.set(DECEMBER_1 + 1)
    budgets.admit(request("bob", "c3", price=0.36))


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture(scope="module")
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def test_alerts_at_each_threshold_once_per_period_mailed_over_smtp(
    make_budgets, ledger_url, clock, smtp_server, caplog  # noqa: F811
):
    controller, inbox = smtp_server
    inbox.messages.clear()
    mailer = Mailer(("ops@example.org",), host=controller.hostname, port=controller.port)
    budgets = make_budgets(mailer=mailer, min_window_s=60)
    budgets.admit(request("alice", "c1", price=36.0))  # $0.01/s of $10
    live = {("c1", "c1")}
    clock.advance(400)  # 40%
    assert budgets.meter(live).alerts == []
    clock.advance(200)  # 60%
    assert [a.threshold for a in budgets.meter(live).alerts] == [50]
    assert budgets.meter(live).alerts == []  # once per period, however many passes
    clock.advance(500)  # 110%: 80 and 100 at once
    assert [a.threshold for a in budgets.meter(live).alerts] == [80, 100]
    # a restarted gateway (new objects, same database) does not send them again
    again = Budgets(Ledger.open(ledger_url, clock=clock), budgets.policy, mailer)
    assert again.meter(live).alerts == []
    again.ledger.close()
    subjects = [m.content.decode() for m in inbox.messages]
    assert len(subjects) == 3 and all(m.rcpt_tos == ["ops@example.org"] for m in inbox.messages)
    assert "budget 'team' reached 50% for 2026-11" in subjects[0]
    assert "Budget 'team' has spent $6.00 of $10.00" in subjects[0]
    assert any("reached 100%" in text for text in subjects)
    assert "crossing the 80% alert" in caplog.text  # always logged too
    with budgets.ledger.reading() as conn:
        assert all(conn.scalars(select(AlertSent.mailed)))
    clock.set(DECEMBER_1 + 850)  # a new month (85% of it spent): the thresholds can fire again
    assert [a.threshold for a in budgets.meter(live).alerts] == [50, 80]


def test_concurrent_admissions_never_exceed_max_cores(ledger_url):  # noqa: F811
    """50 requests from 10 users sharing one budget, each from its own connection pool:
    cores held never exceed max_cores at any instant, and the only errors are refusals."""
    platform = make_platform(
        "team: {monthly_usd: 1000, max_cores: 16}\nsolo: {monthly_usd: 1}\n",
        users="".join(f"- name: user{n}\n  groups: [team]\n" for n in range(10)),
    )
    policy = Policy.from_platform(platform)
    guards = [Budgets(Ledger.open(ledger_url), policy, Mailer(())) for _ in range(5)]
    admitted, refused, errors = [], [], []
    lock = threading.Lock()

    def one(n: int) -> None:
        guard = guards[n % len(guards)]
        try:
            guard.admit(request(f"user{n % 10}", f"c{n}", cluster=f"c{n}", cores=3, price=1.0))
        except BudgetExceeded as exc:
            with lock:
                refused.append(str(exc))
            return
        except Exception as exc:  # anything else is a bug
            with lock:
                errors.append(repr(exc))
            return
        with lock:
            admitted.append(n)
        time.sleep(random.uniform(0, 0.05))
        if random.random() < 0.5:  # some clusters stop, making room for later requests
            guard.cluster_stopped(f"c{n}")

    with ThreadPoolExecutor(max_workers=50) as pool:
        list(pool.map(one, range(50)))
    assert errors == []
    assert len(admitted) + len(refused) == 50
    assert len(admitted) >= 5 and refused and all("over max_cores 16" in m for m in refused)
    with guards[0].ledger.reading() as conn:
        rows = conn.execute(select(UsageInterval.started_at, UsageInterval.ended_at, UsageInterval.cores)).all()
    peak = peak_cores(rows)
    assert len(rows) == len(admitted) and 0 < peak <= 16
    for guard in guards:
        guard.ledger.close()


def test_headroom_counts_what_cores_and_money_still_allow(make_budgets, clock):
    budgets = make_budgets(min_window_s=600)
    assert budgets.headroom("alice", 2, 3.6) == 4  # max_cores 8
    budgets.admit(request("alice", "w1", price=3.6))
    assert budgets.headroom("alice", 2, 3.6) == 3
    assert budgets.headroom("alice", 2, 30.0) == 1  # $10 left: (60 - 3.6)/30 per hour of window
    assert budgets.headroom("bob", 1, 0.36) == 16  # solo: no max_cores; $1 a 10-min window is $6/h
    clock.advance(3600 * 3)  # alice's budget is past exhausted
    assert budgets.headroom("alice", 2, 0.0) == 0

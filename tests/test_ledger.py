"""The usage ledger on SQLite and a real PostgreSQL: migrations, money from intervals,
crash recovery at the last heartbeat."""

from __future__ import annotations

import os
import stat

import pytest
from sqlalchemy import inspect, select

from deploy.ledger import Ledger, Process, month_named, month_of, queries
from deploy.ledger.engine import SQLITE_FILENAME, VERSION_TABLE
from deploy.ledger.models import UsageInterval
from tests.support.ledger import DECEMBER_1, MID_NOVEMBER, ledger_url  # noqa: F401
from tests.support.postgres import postgres_server  # noqa: F401

pytestmark = pytest.mark.slow


def worker(name: str, cluster: str = "c1", price: float = 3.6, cores: float = 2, budget: str = "team") -> Process:
    return Process("alice", budget, cluster, name, "small", "worker", cores, 4 << 30, price)


def start(ledger: Ledger, process: Process) -> int:
    with ledger.writing() as conn:
        return ledger.open_interval(conn, process, ledger.clock())


def spent(ledger: Ledger, budget: str = "team", month: str | None = None) -> float:
    now = ledger.clock()
    with ledger.reading() as conn:
        return queries.spent(conn, budget, month_named(month) if month else month_of(now), now)


def test_migrations_create_tables_once_under_their_own_version_table(ledger_url, clock):  # noqa: F811
    first = Ledger.open(ledger_url, clock=clock)
    again = Ledger.open(ledger_url, clock=clock)  # a second opener finds the schema at head
    tables = set(inspect(first.engine).get_table_names())
    assert {"usage_intervals", "budget_periods", "alerts_sent", VERSION_TABLE} <= tables
    assert "alembic_version" not in tables  # the hub's alembic table may share the server
    first.close()
    again.close()


def test_sqlite_default_lives_in_the_state_dir_private_and_in_wal_mode(tmp_path, clock, monkeypatch):
    monkeypatch.delenv("GRATICULE_LEDGER_URL", raising=False)
    ledger = Ledger.open(state_dir=tmp_path / "state", clock=clock)
    path = tmp_path / "state" / SQLITE_FILENAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with ledger.reading() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    ledger.close()


def test_open_intervals_are_charged_up_to_now_and_closed_ones_to_their_end(ledger, clock):
    start(ledger, worker("w1", price=3.6))  # $0.001 per second
    clock.advance(1000)
    assert spent(ledger) == pytest.approx(1.0)
    clock.advance(500)
    assert spent(ledger) == pytest.approx(1.5)  # nothing accumulated: recomputed from the interval
    ledger.close_process("c1", "w1", "stopped")
    clock.advance(10_000)
    assert spent(ledger) == pytest.approx(1.5)
    with ledger.reading() as conn:
        assert queries.running(conn, "team").cores == 0


def test_an_interval_across_a_month_boundary_is_split_between_months(ledger, clock):
    clock.set(DECEMBER_1 - 3600)
    start(ledger, worker("w1", price=1.0))
    clock.set(DECEMBER_1 + 7200)
    assert spent(ledger, month="2026-11") == pytest.approx(1.0)
    assert spent(ledger, month="2026-12") == pytest.approx(2.0)
    assert spent(ledger, month="2027-01") == 0.0


def test_spend_is_grouped_by_budget_and_user(ledger, clock):
    start(ledger, worker("w1", price=3.6))
    start(ledger, Process("bob", "solo", "c2", "c2", "small", "scheduler", 1, 1 << 30, 7.2))
    clock.advance(100)
    with ledger.reading() as conn:
        by_user = queries.spent_by_user(conn, month_of(clock()), clock())
        held = queries.running_by(conn)
    assert by_user == {("team", "alice"): pytest.approx(0.1), ("solo", "bob"): pytest.approx(0.2)}
    assert held[("solo", "bob")].cores == 1 and held[("team", "alice")].clusters == 1


def test_sweep_closes_gone_processes_at_their_last_heartbeat(ledger, clock):
    """Crash recovery: nothing charged after the last time a process was seen alive."""
    start(ledger, worker("w1"))
    start(ledger, worker("w2"))
    clock.advance(30)
    ledger.sweep({("c1", "w1"), ("c1", "w2")}, clock())  # both seen alive at +30 s
    clock.advance(30)
    ledger.sweep({("c1", "w1")}, clock())  # w2 died unseen between +30 s and +60 s
    clock.advance(3600)  # e.g. the gateway was down an hour; w1 kept running
    closed = ledger.sweep({("c1", "w1")}, clock())
    assert closed == []
    with ledger.reading() as conn:
        rows = {r.process: r for r in conn.execute(select(UsageInterval))}
    assert rows["w2"].ended_at == MID_NOVEMBER + 30 and rows["w2"].end_reason == "process gone"
    assert rows["w1"].ended_at is None and rows["w1"].heartbeat_at == clock()
    # w1: 3660 s, w2: 30 s, at $0.001/s; a second sweep changes nothing
    assert spent(ledger) == pytest.approx(3.69)
    ledger.sweep({("c1", "w1")}, clock())
    assert spent(ledger) == pytest.approx(3.69)


def test_a_process_is_open_at_most_once(ledger):
    from sqlalchemy.exc import IntegrityError

    start(ledger, worker("w1"))
    with pytest.raises(IntegrityError):
        start(ledger, worker("w1"))
    ledger.close_process("c1", "w1", "stopped")
    start(ledger, worker("w1"))  # a new life of the same name after it stopped is fine


def test_close_cluster_closes_scheduler_and_workers(ledger, clock):
    start(ledger, Process("alice", "team", "c1", "c1", "small", "scheduler", 1, 1 << 30, 3.6))
    start(ledger, worker("w1"))
    start(ledger, worker("w9", cluster="c9"))
    clock.advance(10)
    assert ledger.close_cluster("c1", "budget exhausted") == 2
    assert ledger.open_processes() == [("c9", "w9")]

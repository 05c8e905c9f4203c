"""Ledger benchmark: admission-check latency with 100 budgets and 100,000 usage intervals,
and one metering pass over 1,000 running workers, on SQLite and PostgreSQL.

Targets: admission p95 < 10 ms, metering pass < 100 ms. The baseline is a trivial
primary-key lookup on the same database in the same run, so ratios survive a noisy box.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert, select

from deploy.budgets import Budgets, Policy, Request
from deploy.budgets.alerts import Mailer
from deploy.budgets.policy import BudgetRule
from deploy.ledger import Ledger, ManualClock
from deploy.ledger.models import UsageInterval
from tests.support.postgres import running_postgres

BUDGETS, USERS, INTERVALS, RUNNING_WORKERS = 100, 1000, 100_000, 1000
SAMPLES = 300
NOW = 1794744000.0  # mid-November 2026


def _policy() -> Policy:
    budgets = {
        f"b{n}": BudgetRule(f"b{n}", 1e9, 100_000, (50, 80, 100), "stop") for n in range(BUDGETS)
    }
    payers = {f"u{n}": f"b{n % BUDGETS}" for n in range(USERS)}
    return Policy(budgets=budgets, payers=payers, min_window_s=600)


def _fill(ledger: Ledger) -> None:
    rng = random.Random(7)
    rows = []
    for n in range(INTERVALS):
        user = n % USERS
        start = NOW - rng.uniform(0, 40 * 86400)  # this month and the previous one
        running = n < RUNNING_WORKERS
        rows.append(
            dict(
                user=f"u{user}", budget=f"b{user % BUDGETS}", cluster=f"c{n // 10}", process=f"w{n}",
                profile="small", role="worker", cores=2.0, memory_bytes=8 << 30, price_per_hour_usd=0.1,
                started_at=start, ended_at=None if running else start + rng.uniform(60, 7200),
                heartbeat_at=start, end_reason=None if running else "stopped",
            )
        )
    with ledger.writing() as conn:
        for chunk in range(0, len(rows), 5000):
            conn.execute(insert(UsageInterval), rows[chunk : chunk + 5000])
    # A ledger in service has planner statistics (autovacuum on PostgreSQL); a bulk load
    # has none until analysed, and the planner would then guess badly.
    with ledger.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE usage_intervals" if ledger.dialect == "postgresql" else "ANALYZE")


def _timed(fn, samples: int) -> list[float]:
    out = []
    for n in range(samples):
        t0 = time.perf_counter()
        fn(n)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def _run(label: str, url: str) -> None:
    clock = ManualClock(NOW)
    ledger = Ledger.open(url, clock=clock)
    budgets = Budgets(ledger, _policy(), Mailer(()))
    t0 = time.perf_counter()
    _fill(ledger)
    print(f"[{label}] filled {INTERVALS:,} intervals ({RUNNING_WORKERS} open) in {time.perf_counter() - t0:.1f} s")

    def baseline(n: int) -> None:
        with ledger.reading() as conn:
            conn.execute(select(UsageInterval.id).where(UsageInterval.id == n + 1)).all()

    def admit(n: int) -> None:
        user = f"u{random.randrange(USERS)}"
        budgets.admit(Request(user, f"bench{n}", f"bench{n}", "small", "scheduler", 1, 1 << 30, 0.1))

    def check(n: int) -> None:
        budgets.check_scale(f"u{random.randrange(USERS)}", 2, 0.1, 4)

    base = _timed(baseline, SAMPLES)
    admitted = _timed(admit, SAMPLES)
    checked = _timed(check, SAMPLES)
    for n in range(SAMPLES):  # back to exactly RUNNING_WORKERS open intervals
        ledger.close_cluster(f"bench{n}", "bench")
    live = set(ledger.open_processes())
    passes = []
    for _ in range(5):
        clock.advance(30)
        t0 = time.perf_counter()
        result = budgets.meter(live)
        passes.append((time.perf_counter() - t0) * 1000)
        assert not result.closed
    b50 = statistics.median(base)
    for name, values, target in (("admit (check + record)", admitted, 10.0), ("check only (scale-up)", checked, 10.0)):
        p50, p95 = statistics.median(values), _p(values, 95)
        verdict = "ok" if p95 < target else "OVER TARGET"
        print(
            f"[{label}] {name}: p50 {p50:.2f} ms, p95 {p95:.2f} ms (target p95 < {target:g} ms: {verdict}); "
            f"{p50 / b50:.1f}x baseline p50"
        )
    print(f"[{label}] baseline pk lookup: p50 {b50:.3f} ms, p95 {_p(base, 95):.3f} ms")
    best = min(passes)
    print(
        f"[{label}] metering pass over {len(live):,} running processes: best {best:.1f} ms, "
        f"median {statistics.median(passes):.1f} ms (target < 100 ms: {'ok' if best < 100 else 'OVER TARGET'}); "
        f"{best / b50:.0f}x baseline p50"
    )
    ledger.close()


def on_sqlite_and_postgresql(run: Callable[[str, str], None]) -> None:
    """`run(label, url)` on a fresh SQLite file, then on a real PostgreSQL server's fresh database."""
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", f"sqlite:///{Path(tmp) / 'ledger.sqlite'}")
    with running_postgres() as server:
        run("postgresql", server.fresh_database())


def main() -> None:
    on_sqlite_and_postgresql(_run)


if __name__ == "__main__":
    main()

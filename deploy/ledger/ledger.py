"""The usage ledger: transactions, the per-budget lock, and interval lifecycle."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from deploy.ledger.clock import Clock, system_clock
from deploy.ledger.engine import SQLITE_BEGIN, open_engine
from deploy.ledger.models import BudgetPeriod, UsageInterval
from deploy.ledger.periods import Month

ProcessKey = tuple[str, str]  # (cluster, process)


@dataclass(frozen=True)
class Process:
    """A scheduler or worker about to start, as the ledger records it."""

    user: str
    budget: str
    cluster: str
    process: str
    profile: str
    role: str
    cores: float
    memory_bytes: int
    price_per_hour_usd: float


class Ledger:
    def __init__(self, engine: Engine, clock: Clock = system_clock) -> None:
        self.engine = engine
        self.clock = clock
        self._writer = engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})

    @classmethod
    def open(
        cls, url: str | None = None, state_dir: Path | None = None, clock: Clock = system_clock
    ) -> Ledger:
        return cls(open_engine(url, state_dir), clock)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it holds the database write lock from the start."""
        with self._writer.begin() as conn:
            yield conn

    def lock_period(self, conn: Connection, budget: str, month: Month, limit_usd: float) -> BudgetPeriod:
        """Create the budget's period row if needed and lock it until the transaction ends.

        Every admission for a budget takes this lock first, so two requests can never both
        see the same cores in use. (SQLite already serializes writers: BEGIN IMMEDIATE.)
        """
        query = select(BudgetPeriod).where(BudgetPeriod.budget == budget, BudgetPeriod.month == month.name)
        if self.dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:  # first request of the month: create the row (racing creators are fine)
            values = dict(
                budget=budget, month=month.name, starts_at=month.starts_at, ends_at=month.ends_at, limit_usd=limit_usd
            )
            dialect = postgresql if self.dialect == "postgresql" else sqlite
            conn.execute(dialect.insert(BudgetPeriod).values(**values).on_conflict_do_nothing())
            row = conn.execute(query).one()
        if row.limit_usd != limit_usd:  # platform.yaml changed the limit this month
            conn.execute(update(BudgetPeriod).where(BudgetPeriod.id == row.id).values(limit_usd=limit_usd))
        return row

    def rebind(self, interval_id: int, cluster: str, process: str) -> None:
        """Give a reserved interval its real process name once the backend has made one."""
        with self.writing() as conn:
            where = UsageInterval.id == interval_id
            conn.execute(update(UsageInterval).where(where).values(cluster=cluster, process=process))

    def find_open(self, conn: Connection, cluster: str, process: str) -> int | None:
        query = select(UsageInterval.id).where(
            UsageInterval.cluster == cluster, UsageInterval.process == process, UsageInterval.ended_at.is_(None)
        )
        return conn.execute(query).scalar()

    def open_interval(self, conn: Connection, process: Process, now: float) -> int:
        values = dict(vars(process), started_at=now, heartbeat_at=now)
        return conn.execute(insert(UsageInterval).values(**values).returning(UsageInterval.id)).scalar_one()

    def close_process(self, cluster: str, process: str, reason: str, at: float | None = None) -> int:
        """Close the open interval of one process (no-op if none is open)."""
        with self.writing() as conn:
            where = (UsageInterval.cluster == cluster, UsageInterval.process == process)
            return _close(conn, where, self.clock() if at is None else at, reason)

    def close_cluster(self, cluster: str, reason: str, at: float | None = None) -> int:
        """Close every open interval of a cluster (its scheduler and any worker left)."""
        with self.writing() as conn:
            return _close(conn, (UsageInterval.cluster == cluster,), self.clock() if at is None else at, reason)

    def sweep(self, live: Collection[ProcessKey], now: float, seen_at: float | None = None) -> list[ProcessKey]:
        """Refresh heartbeats of live processes; close the others at their last heartbeat.

        This is how a crash is recovered: a process that died while nobody watched is
        charged up to the last time it was seen alive, not up to now, and never twice.
        `seen_at` is when `live` was observed: intervals admitted after it are not judged.
        """
        live = set(live)
        seen_at = now if seen_at is None else seen_at
        with self.writing() as conn:
            open_rows = conn.execute(
                select(UsageInterval.id, UsageInterval.cluster, UsageInterval.process).where(
                    UsageInterval.ended_at.is_(None), UsageInterval.started_at <= seen_at
                )
            ).all()
            gone = [row for row in open_rows if (row.cluster, row.process) not in live]
            if gone:
                conn.execute(
                    update(UsageInterval)
                    .where(UsageInterval.id.in_([row.id for row in gone]))
                    .values(ended_at=UsageInterval.heartbeat_at, end_reason="process gone")
                )
            if len(gone) < len(open_rows):
                conn.execute(
                    update(UsageInterval)
                    .where(UsageInterval.ended_at.is_(None), UsageInterval.heartbeat_at < seen_at)
                    .values(heartbeat_at=seen_at)
                )
        return [(row.cluster, row.process) for row in gone]

    def open_processes(self, budget: str | None = None) -> list[ProcessKey]:
        query = select(UsageInterval.cluster, UsageInterval.process).where(UsageInterval.ended_at.is_(None))
        if budget is not None:
            query = query.where(UsageInterval.budget == budget)
        with self.reading() as conn:
            return [tuple(row) for row in conn.execute(query)]


def _close(conn: Connection, where: tuple, at: float, reason: str) -> int:
    # Never end before the start (a clock step back must not make negative time).
    open_ = (UsageInterval.ended_at.is_(None), *where)
    closed = conn.execute(
        update(UsageInterval)
        .where(*open_, UsageInterval.started_at <= at)
        .values(ended_at=at, heartbeat_at=at, end_reason=reason[:512])
    ).rowcount
    closed += conn.execute(
        update(UsageInterval)
        .where(*open_)
        .values(ended_at=UsageInterval.started_at, end_reason=reason[:512])
    ).rowcount
    return closed


__all__ = ["Ledger", "Process", "ProcessKey"]

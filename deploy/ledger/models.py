"""Ledger tables. Times are UTC seconds since the epoch (double precision): the same
arithmetic then works in SQL on SQLite and PostgreSQL alike, so money can be summed
where the rows are. Money is never stored as a running total: it is computed from
intervals (open ones up to now) each time it is needed.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
Id = BigInteger().with_variant(Integer(), "sqlite")

ROLE_SCHEDULER = "scheduler"
ROLE_WORKER = "worker"
ROLE_NOTEBOOK = "notebook"  # a notebook server's machine (VM targets; deploy.budgets.servers)


class Base(DeclarativeBase):
    pass


class UsageInterval(Base):
    """One scheduler or worker process, or a notebook server's machine, from admission to its
    stop (NULL while running)."""

    __tablename__ = "usage_intervals"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(128))
    budget: Mapped[str] = mapped_column(String(128))
    cluster: Mapped[str] = mapped_column(String(128))
    process: Mapped[str] = mapped_column(String(128))  # scheduler: the cluster name; worker: its name
    profile: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    cores: Mapped[float] = mapped_column(Double)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    price_per_hour_usd: Mapped[float] = mapped_column(Double)
    started_at: Mapped[float] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    heartbeat_at: Mapped[float] = mapped_column(Double)
    end_reason: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # VM backends: the instance paid for; then started_at is its launch (deploy.ledger.machines).
    machine_id: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        # Covering indexes: spend is summed from the index alone, per budget or for all.
        Index("ix_usage_budget_end", "budget", "ended_at", "started_at", "price_per_hour_usd"),
        Index("ix_usage_end", "ended_at", "budget", "started_at", "price_per_hour_usd"),
        # What runs now (cores in use, burn rate) reads only open intervals.
        Index(
            "ix_usage_open_budget",
            "budget", "cores", "price_per_hour_usd", "cluster",
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_usage_cluster", "cluster"),
        # A process is open at most once: a retried start cannot double-charge it.
        Index(
            "uq_usage_open_process",
            "cluster",
            "process",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index(
            "uq_usage_open_machine",
            "machine_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL AND machine_id IS NOT NULL"),
            postgresql_where=text("ended_at IS NULL AND machine_id IS NOT NULL"),
        ),
    )


class BudgetPeriod(Base):
    """A budget's calendar month (UTC). Its row is the lock that serializes admission."""

    __tablename__ = "budget_periods"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    budget: Mapped[str] = mapped_column(String(128))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    starts_at: Mapped[float] = mapped_column(Double)
    ends_at: Mapped[float] = mapped_column(Double)
    limit_usd: Mapped[float] = mapped_column(Double)
    exhausted_at: Mapped[float | None] = mapped_column(Double, nullable=True)

    __table_args__ = (UniqueConstraint("budget", "month", name="uq_budget_period"),)


class AlertSent(Base):
    """One threshold alert of one budget in one month: the unique key makes it once only."""

    __tablename__ = "alerts_sent"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    budget: Mapped[str] = mapped_column(String(128))
    month: Mapped[str] = mapped_column(String(7))
    threshold: Mapped[int] = mapped_column(Integer)
    spent_usd: Mapped[float] = mapped_column(Double)
    limit_usd: Mapped[float] = mapped_column(Double)
    sent_at: Mapped[float] = mapped_column(Double)
    mailed: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("budget", "month", "threshold", name="uq_alert_once"),)


class JobRun(Base):
    """One run of a batch job (deploy/jobs): a declared job's scheduled slot, an on-demand
    run, or an SDK submission. Its history: when, how it ended, its cost, log and result."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(128))  # the declared job, or the submission's name
    owner: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # scheduled | manual | submitted
    slot: Mapped[float | None] = mapped_column(Double, nullable=True)  # scheduled runs only
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)  # attempts started so far
    spec: Mapped[str] = mapped_column(Text)  # deploy.jobs.spec.RunSpec as JSON
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # a submitted file or callable
    created_at: Mapped[float] = mapped_column(Double)
    next_attempt_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    started_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    attempt_started_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    driver: Mapped[str | None] = mapped_column(Text, nullable=True)  # the host's handle, JSON
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    cost_usd: Mapped[float] = mapped_column(Double, default=0.0)  # the drivers' (clusters: usage_intervals)
    log: Mapped[str] = mapped_column(Text, default="")
    result_name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    result: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        # One run per slot of a job, whoever inserts it (a restarted or second scheduler).
        Index("uq_job_slot", "job", "slot", unique=True, sqlite_where=text("slot IS NOT NULL"),
              postgresql_where=text("slot IS NOT NULL")),
        Index("ix_job_runs_owner", "owner", "id"),
        Index("ix_job_runs_status", "status", "next_attempt_at"),
    )


class JobCursor(Base):
    """How far the scheduler has looked at a declared job's schedule (UTC seconds)."""

    __tablename__ = "job_cursors"

    job: Mapped[str] = mapped_column(String(128), primary_key=True)
    checked_through: Mapped[float] = mapped_column(Double)

"""Job runs in the usage database: create (once per slot), claim, update, read.

Every state change is one short transaction. A scheduled run is inserted with
`INSERT ... ON CONFLICT DO NOTHING` on the unique (job, slot) index, so however many
schedulers look at a slot (a restart, a second hub), one row and one run come of it.
A queued run is claimed by a conditional UPDATE: only one claimer sees its row change.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from deploy.ledger import Ledger
from deploy.ledger.models import JobCursor, JobRun
from render.job_spec import RunSpec

QUEUED, STARTING, RUNNING = "queued", "starting", "running"
SUCCEEDED, FAILED, TIMED_OUT, CANCELLED = "succeeded", "failed", "timed_out", "cancelled"
REFUSED, SKIPPED = "refused", "skipped"
ACTIVE = (QUEUED, STARTING, RUNNING)
FINISHED = (SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, REFUSED, SKIPPED)


@dataclass(frozen=True)
class Run:
    """A run as the API and the CLI show it (no payload, no result bytes)."""

    id: int
    job: str
    owner: str
    kind: str
    slot: float | None
    status: str
    attempt: int
    created_at: float
    started_at: float | None
    ended_at: float | None
    exit_code: int | None
    message: str
    cost_usd: float
    result_name: str | None

    def as_dict(self) -> dict:
        return dict(vars(self))


TABLE = JobRun.__table__
_COLUMNS = [getattr(JobRun, name) for name in Run.__dataclass_fields__]


def _dialect(ledger: Ledger):
    return postgresql if ledger.dialect == "postgresql" else sqlite


def cursor(conn: Connection, job: str) -> float | None:
    return conn.execute(select(JobCursor.checked_through).where(JobCursor.job == job)).scalar()


def set_cursor(ledger: Ledger, conn: Connection, job: str, checked_through: float) -> None:
    statement = _dialect(ledger).insert(JobCursor).values(job=job, checked_through=checked_through)
    conn.execute(statement.on_conflict_do_update(index_elements=["job"], set_={"checked_through": checked_through}))


def insert_slot(ledger: Ledger, conn: Connection, spec: RunSpec, slot: float, status: str, now: float) -> int | None:
    """The new run's id, or None when this (job, slot) already has its run."""
    values = _new(spec, "scheduled", status, now) | {"slot": slot}
    if status == SKIPPED:
        values |= {"ended_at": now, "message": "slot missed while the scheduler was down (missed: skip)"}
    statement = _dialect(ledger).insert(JobRun).values(**values).on_conflict_do_nothing()
    return conn.execute(statement.returning(JobRun.id)).scalar()


def enqueue(ledger: Ledger, spec: RunSpec, kind: str, now: float, payload: bytes | None = None) -> int:
    """A run to start as soon as the scheduler sees it (`platform jobs run`, `graticule.submit`)."""
    with ledger.writing() as conn:
        values = _new(spec, kind, QUEUED, now) | {"payload": payload}
        return conn.execute(insert(JobRun).values(**values).returning(JobRun.id)).scalar_one()


def _new(spec: RunSpec, kind: str, status: str, now: float) -> dict:
    return dict(
        job=spec.name, owner=spec.owner, kind=kind, status=status, attempt=0, spec=spec.to_json(),
        created_at=now, next_attempt_at=now, message="", cost_usd=0.0, log="", cancel_requested=False,
    )


def claim(ledger: Ledger, run_id: int, now: float) -> bool:
    """Take a queued run to start it; False if another scheduler took it first."""
    with ledger.writing() as conn:
        taken = (update(JobRun).where(JobRun.id == run_id, JobRun.status == QUEUED)
                 .values(status=STARTING, attempt_started_at=now))
        return conn.execute(taken).rowcount == 1


def due_queued(ledger: Ledger, now: float) -> list[Row]:
    with ledger.reading() as conn:
        query = select(TABLE).where(JobRun.status == QUEUED, JobRun.next_attempt_at <= now).order_by(JobRun.id)
        return conn.execute(query).all()


def in_flight(ledger: Ledger) -> list[Row]:
    """Runs whose driver was started (or was being started when a scheduler stopped)."""
    with ledger.reading() as conn:
        return conn.execute(select(TABLE).where(JobRun.status.in_((STARTING, RUNNING))).order_by(JobRun.id)).all()


def queued_cancels(ledger: Ledger) -> list[Row]:
    with ledger.reading() as conn:
        query = select(TABLE).where(JobRun.status == QUEUED, JobRun.cancel_requested.is_(True))
        return conn.execute(query).all()


def change(ledger: Ledger, run_id: int, **values: object) -> None:
    with ledger.writing() as conn:
        conn.execute(update(JobRun).where(JobRun.id == run_id).values(**values))


def get(ledger: Ledger, run_id: int) -> Row | None:
    with ledger.reading() as conn:
        return conn.execute(select(TABLE).where(JobRun.id == run_id)).first()


def summary(row: Row) -> Run:
    return Run(**{name: getattr(row, name) for name in Run.__dataclass_fields__})


def runs(ledger: Ledger, owner: str | None = None, job: str | None = None, limit: int = 100) -> list[Run]:
    """Newest first; only `owner`'s when given (what the API shows a user)."""
    query = select(*_COLUMNS).order_by(JobRun.id.desc()).limit(limit)
    if owner is not None:
        query = query.where(JobRun.owner == owner)
    if job is not None:
        query = query.where(JobRun.job == job)
    with ledger.reading() as conn:
        return [Run(**row._mapping) for row in conn.execute(query)]


def request_cancel(ledger: Ledger, run_id: int) -> bool:
    """Ask the scheduler to stop a run; False when it has already ended."""
    with ledger.writing() as conn:
        asked = update(JobRun).where(JobRun.id == run_id, JobRun.status.in_(ACTIVE)).values(cancel_requested=True)
        return conn.execute(asked).rowcount == 1

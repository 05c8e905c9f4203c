"""Intervals that follow instances (VM backends): what an instance costs, from launch to end.

Admission opens a process's interval before its instance exists (so a starting instance
already counts against `max_cores` and the money left). Once the machines layer has
launched it, `attach` makes the interval that instance's: it starts at the instance's
launch time and is charged at the price of the market it got (spot or on-demand). When
the instance goes, `close_machine` ends it at the instance's own end time.

An instance is paid by at most one open interval (a unique index): a job adopted after a
gateway restart, or a launch found again by its client token, is never charged twice.
An instance stopped and started again between two looks (GCE dates both) is paid for its
two runs: `split_at_restart` ends the interval at the stop and opens the next at the start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from deploy.ledger.ledger import Ledger, ProcessKey, _close
from deploy.ledger.models import UsageInterval as U


@dataclass(frozen=True)
class Attachment:
    cluster: str
    process: str
    machine_id: str
    launched_at: float | None  # UTC seconds; None when the cloud does not say
    price_per_hour_usd: float


def attached(ledger: Ledger) -> dict[ProcessKey, str]:
    """{(cluster, process): machine id} of the open intervals that know their instance."""
    query = select(U.cluster, U.process, U.machine_id).where(U.ended_at.is_(None), U.machine_id.is_not(None))
    with ledger.reading() as conn:
        return {(row.cluster, row.process): row.machine_id for row in conn.execute(query)}


def attach(ledger: Ledger, attachments: Iterable[Attachment]) -> list[ProcessKey]:
    """Give open intervals their instances (one transaction); returns those changed.

    The start moves to the launch, never before the admission (EC2 dates launches to the
    second): the ledger then still never holds more than `max_cores` at any instant.
    """
    changed: list[ProcessKey] = []
    with ledger.writing() as conn:
        paid = set(conn.scalars(select(U.machine_id).where(U.ended_at.is_(None), U.machine_id.is_not(None))))
        for item in attachments:
            if item.machine_id in paid:
                continue  # already paid for by an open interval (this one, or adopted)
            row = conn.execute(
                select(U.id, U.started_at, U.heartbeat_at).where(
                    U.cluster == item.cluster, U.process == item.process, U.ended_at.is_(None)
                )
            ).first()
            if row is None:
                continue
            start = row.started_at if item.launched_at is None else max(row.started_at, item.launched_at)
            conn.execute(
                update(U)
                .where(U.id == row.id)
                .values(
                    machine_id=item.machine_id,
                    started_at=start,
                    heartbeat_at=max(row.heartbeat_at, start),
                    price_per_hour_usd=item.price_per_hour_usd,
                )
            )
            paid.add(item.machine_id)
            changed.append((item.cluster, item.process))
    return changed


def close_machine(ledger: Ledger, machine_id: str, at: float, reason: str) -> int:
    """End the open interval paying for `machine_id` at `at` (never after now, never before its start)."""
    with ledger.writing() as conn:
        return _close(conn, (U.machine_id == machine_id,), min(at, ledger.clock()), reason)


@dataclass(frozen=True)
class Restart:
    machine_id: str
    paused_at: float  # UTC seconds: its earlier run ended (stopped or suspended)
    resumed_at: float  # UTC seconds: its current run began


# What the interval of the next run keeps from the one before it.
_CARRIED = (U.user, U.budget, U.cluster, U.process, U.profile, U.role, U.cores, U.memory_bytes,
            U.price_per_hour_usd, U.machine_id)


def split_at_restart(ledger: Ledger, restarts: Iterable[Restart]) -> list[str]:
    """For each instance that runs again: the open interval that began before its pause ends
    there, and the same process, at the same price, is open again from the restart (one
    transaction); returns the machines split. An interval that began after the pause is
    already the current run's: looking again changes nothing."""
    split: list[str] = []
    with ledger.writing() as conn:
        now = ledger.clock()
        for item in restarts:
            row = conn.execute(select(U.id, U.started_at, U.heartbeat_at, *_CARRIED).where(
                U.machine_id == item.machine_id, U.ended_at.is_(None))).first()
            if row is None or row.started_at >= item.paused_at:
                continue
            _close(conn, (U.id == row.id,), min(item.paused_at, now), "instance stopped")
            start = max(min(item.resumed_at, now), item.paused_at)
            carried = {column.key: getattr(row, column.key) for column in _CARRIED}
            conn.execute(insert(U).values(**carried, started_at=start, heartbeat_at=max(start, row.heartbeat_at)))
            split.append(item.machine_id)
    return split


__all__ = ["Attachment", "Restart", "attach", "attached", "close_machine", "split_at_restart"]

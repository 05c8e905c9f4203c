"""Money and cores, computed from intervals in SQL (open intervals charged up to now).

The charge of an interval in a month is its overlap with [month start, min(month end,
now)) times its hourly price. Nothing here keeps a running total.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, or_, select

from deploy.ledger.models import ROLE_NOTEBOOK
from deploy.ledger.models import UsageInterval as U
from deploy.ledger.periods import Month


def _least(a: ColumnElement, b: ColumnElement) -> ColumnElement:
    return case((a < b, a), else_=b)  # portable: SQLite has no LEAST, PostgreSQL no 2-arg MIN


def _greatest(a: ColumnElement, b: ColumnElement) -> ColumnElement:
    return case((a > b, a), else_=b)


def charge(month: Month, now: float) -> ColumnElement:
    """USD charged to the month by each interval (used inside SUM)."""
    until = literal(min(month.ends_at, now))
    end = _least(func.coalesce(U.ended_at, until), until)
    start = _greatest(U.started_at, literal(month.starts_at))
    return _greatest(end - start, literal(0.0)) * U.price_per_hour_usd / 3600.0


def in_month(month: Month, now: float) -> ColumnElement:
    # ended_at leads the condition so the covering indexes bound the scan to this month.
    until = min(month.ends_at, now)
    return and_(or_(U.ended_at.is_(None), U.ended_at > month.starts_at), U.started_at < until)


def spent_by_budget(
    conn: Connection, month: Month, now: float, budgets: Iterable[str] | None = None
) -> dict[str, float]:
    query = select(U.budget, func.sum(charge(month, now))).where(in_month(month, now)).group_by(U.budget)
    if budgets is not None:
        query = query.where(U.budget.in_(list(budgets)))
    return {budget: float(total or 0.0) for budget, total in conn.execute(query)}


def spent(conn: Connection, budget: str, month: Month, now: float) -> float:
    query = select(func.sum(charge(month, now))).where(U.budget == budget, in_month(month, now))
    return float(conn.execute(query).scalar() or 0.0)


def spent_by_user(conn: Connection, month: Month, now: float) -> dict[tuple[str, str], float]:
    query = (
        select(U.budget, U.user, func.sum(charge(month, now)))
        .where(in_month(month, now))
        .group_by(U.budget, U.user)
    )
    return {(budget, user): float(total or 0.0) for budget, user, total in conn.execute(query)}


@dataclass(frozen=True)
class Running:
    cores: float = 0.0
    usd_per_hour: float = 0.0
    clusters: int = 0


def _clusters() -> ColumnElement:
    """How many clusters: distinct cluster names, notebook servers' intervals left out."""
    return func.count(func.distinct(case((U.role != ROLE_NOTEBOOK, U.cluster))))


def running(conn: Connection, budget: str) -> Running:
    """What one budget holds right now: open intervals only."""
    query = select(
        func.coalesce(func.sum(U.cores), 0.0),
        func.coalesce(func.sum(U.price_per_hour_usd), 0.0),
        _clusters(),
    ).where(U.budget == budget, U.ended_at.is_(None))
    cores, rate, clusters = conn.execute(query).one()
    return Running(float(cores), float(rate), int(clusters))


def running_by(conn: Connection) -> dict[tuple[str, str], Running]:
    """Open intervals grouped by (budget, user)."""
    query = (
        select(
            U.budget,
            U.user,
            func.sum(U.cores),
            func.sum(U.price_per_hour_usd),
            _clusters(),
        )
        .where(U.ended_at.is_(None))
        .group_by(U.budget, U.user)
    )
    return {
        (budget, user): Running(float(cores), float(rate), int(clusters))
        for budget, user, cores, rate, clusters in conn.execute(query)
    }


def running_clusters(conn: Connection, budget: str) -> list[str]:
    """The budget's running clusters, and its notebook servers' keys (deploy.budgets.servers)."""
    query = select(U.cluster).where(U.budget == budget, U.ended_at.is_(None)).distinct().order_by(U.cluster)
    return list(conn.scalars(query))

"""Spend per day of a budget month (UTC days), for `platform usage`'s chart.

Each day is charged like a month is (deploy.ledger.queries.charge on the day's window),
so the days add up to the month's total.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from deploy.ledger import Ledger, Month
from deploy.ledger.models import UsageInterval as U
from deploy.ledger.queries import charge, in_month

DAY = 86400.0
BAR_WIDTH = 40


def spend_per_day(ledger: Ledger, month: Month, budget: str | None = None, user: str | None = None
                  ) -> list[tuple[str, float]]:
    """[(YYYY-MM-DD, USD)] for every day of `month` up to now."""
    now = ledger.clock()
    days: list[tuple[str, float]] = []
    start = month.starts_at
    with ledger.reading() as conn:
        while start < min(month.ends_at, now):
            day = Month(datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d"), start,
                        min(start + DAY, month.ends_at))
            query = select(func.sum(charge(day, now))).where(in_month(day, now))
            if budget is not None:
                query = query.where(U.budget == budget)
            if user is not None:
                query = query.where(U.user == user)
            days.append((day.name, float(conn.execute(query).scalar() or 0.0)))
            start += DAY
    return days


def chart_lines(days: list[tuple[str, float]], bar: str = "#") -> list[str]:
    """One line per day: date, a bar scaled to the busiest day, the amount."""
    if not days:
        return []
    top = max(usd for _, usd in days)
    lines = ["spend per day (UTC)"]
    for name, usd in days:
        length = round(BAR_WIDTH * usd / top) if top > 0 else 0
        if usd > 0 and length == 0:
            length = 1  # a day with any spend shows
        lines.append(f"  {name}  {bar * length:<{BAR_WIDTH}}  ${usd:.2f}")
    return lines

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


def days_of(month: Month, now: float) -> list[Month]:
    """The month's days up to now, each as a period `charge` can sum over."""
    days = []
    start = month.starts_at
    while start < min(month.ends_at, now):
        name = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d")
        days.append(Month(name, start, min(start + DAY, month.ends_at)))
        start += DAY
    return days


def daily_spend(ledger: Ledger, month: Month, budgets: list[str], user: str | None = None) -> dict:
    """Per budget: {"days": [...], "users": {user: [usd per day]}}; only `user`'s if given.

    One pass over the month's intervals: a SUM of `charge` per day, side by side."""
    now = ledger.clock()
    days = days_of(month, now)
    series: dict[str, dict[str, list[float]]] = {b: {} for b in budgets}
    if days and budgets:
        query = (
            select(U.budget, U.user, *(func.sum(charge(day, now)) for day in days))
            .where(in_month(month, now), U.budget.in_(budgets))
            .group_by(U.budget, U.user)
        )
        if user is not None:
            query = query.where(U.user == user)
        with ledger.reading() as conn:
            for budget, who, *per_day in conn.execute(query):
                series[budget][who] = [round(float(usd or 0.0), 6) for usd in per_day]
    return {b: {"days": [d.name for d in days], "users": dict(sorted(s.items()))} for b, s in series.items()}


def spend_per_day(ledger: Ledger, month: Month, budget: str | None = None, user: str | None = None
                  ) -> list[tuple[str, float]]:
    """[(YYYY-MM-DD, USD)] for every day of `month` up to now (one budget, or all)."""
    days = [day.name for day in days_of(month, ledger.clock())]
    if budget is not None:
        budgets = [budget]
    else:
        with ledger.reading() as conn:
            budgets = list(conn.scalars(select(U.budget).where(in_month(month, ledger.clock())).distinct()))
    totals = [0.0] * len(days)
    for series in daily_spend(ledger, month, budgets, user).values():
        for per_day in series["users"].values():
            totals = [total + usd for total, usd in zip(totals, per_day, strict=True)]
    return list(zip(days, totals, strict=True))


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

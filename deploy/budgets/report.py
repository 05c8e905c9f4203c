"""Usage report: per budget and per user, spend in a month, percent of the limit,
cores in use now, clusters running now, and when the budget ran out (if it did).
Data for `platform usage`."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from deploy.budgets.policy import Policy
from deploy.ledger import Ledger, Month, month_of, queries
from deploy.ledger.models import BudgetPeriod


def usage_report(
    ledger: Ledger, policy: Policy, month: Month | None = None, budget: str | None = None, user: str | None = None
) -> dict:
    now = ledger.clock()
    month = month or month_of(now)
    with ledger.reading() as conn:
        by_user = queries.spent_by_user(conn, month, now)
        held = queries.running_by(conn)
        exhausted = dict(
            conn.execute(
                select(BudgetPeriod.budget, BudgetPeriod.exhausted_at).where(
                    BudgetPeriod.month == month.name, BudgetPeriod.exhausted_at.is_not(None)
                )
            ).all()
        )
    names = list(policy.budgets) + sorted({b for b, _ in [*by_user, *held]} - set(policy.budgets))
    budgets = []
    for name in names:
        if budget is not None and name != budget:
            continue
        rule = policy.budgets.get(name)
        users = sorted({u for b, u in [*by_user, *held] if b == name and (user is None or u == user)})
        rows = [
            {
                "name": u,
                "spent_usd": round(by_user.get((name, u), 0.0), 6),
                "cores_in_use": held[(name, u)].cores if (name, u) in held else 0.0,
                "clusters_running": held[(name, u)].clusters if (name, u) in held else 0,
            }
            for u in users
        ]
        if user is not None and not rows:
            continue
        spent = sum((row["spent_usd"] for row in rows), 0.0)
        limit = rule.monthly_usd if rule else None
        budgets.append(
            {
                "name": name,
                "spent_usd": round(spent, 6),
                "limit_usd": limit,
                "percent": round(100.0 * spent / limit, 2) if limit else None,
                "cores_in_use": sum((row["cores_in_use"] for row in rows), 0.0),
                "max_cores": rule.max_cores if rule else None,
                "clusters_running": sum(row["clusters_running"] for row in rows),
                "on_exhausted": rule.on_exhausted if rule else None,
                "exhausted_at": _utc(exhausted[name]) if name in exhausted else None,
                "users": rows,
            }
        )
    return {"month": month.name, "resets_at": month.resets_at, "budgets": budgets}


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_report(report: dict) -> str:
    lines = [f"usage for {report['month']} (UTC; budgets reset {report['resets_at']})"]
    if not report["budgets"]:
        lines.append("  no usage recorded")
    for b in report["budgets"]:
        limit = f"${b['limit_usd']:.2f}" if b["limit_usd"] is not None else "(budget no longer declared)"
        percent = f" ({b['percent']:.1f}%)" if b["percent"] is not None else ""
        cap = f"/{b['max_cores']}" if b["max_cores"] is not None else ""
        lines.append(
            f"{b['name']}: ${b['spent_usd']:.2f} of {limit}{percent}, "
            f"{b['cores_in_use']:g}{cap} cores in use, {b['clusters_running']} clusters running"
            + (f"; exhausted {b['exhausted_at']}" if b.get("exhausted_at") else "")
        )
        for u in b["users"]:
            lines.append(
                f"  {u['name']}: ${u['spent_usd']:.2f}, {u['cores_in_use']:g} cores in use, "
                f"{u['clusters_running']} clusters running"
            )
    return "\n".join(lines)

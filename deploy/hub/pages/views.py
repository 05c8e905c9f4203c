"""What the usage pages show, read from the usage ledger.

Budget and user figures come from `usage_report`, the very function behind `platform
usage`, so the page and `platform usage --json` agree to the cent; daily spend from
`deploy.budgets.daily`, the same as `platform usage`'s chart. Running clusters and alerts
are read here with the ledger's own charge arithmetic, never a second formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from deploy.budgets.daily import daily_spend
from deploy.budgets.policy import Policy
from deploy.budgets.report import usage_report
from deploy.ledger import Ledger, Month, month_of
from deploy.ledger.models import ROLE_NOTEBOOK, ROLE_WORKER, AlertSent
from deploy.ledger.models import UsageInterval as U


@dataclass(frozen=True)
class RunningCluster:
    name: str
    user: str
    budget: str
    profile: str
    workers: int
    started_at: float
    cost_usd: float  # everything this cluster has cost so far, all months


def budgets_for(ledger: Ledger, policy: Policy, viewer: str, admin: bool, month: Month) -> list[dict]:
    """`platform usage`'s budgets: all of them for an admin; for a user, their paying
    budget with only their own row (another user's name or spend never leaves here)."""
    if admin:
        return usage_report(ledger, policy, month)["budgets"]
    payer = policy.payers.get(viewer)
    if payer is None:
        return []
    budgets = usage_report(ledger, policy, month, budget=payer)["budgets"]
    return [{**b, "users": [row for row in b["users"] if row["name"] == viewer]} for b in budgets]


def running_clusters(ledger: Ledger, user: str | None = None) -> list[RunningCluster]:
    """Clusters with an open interval (of `user`, or everybody's), oldest first (notebook
    servers' machines are in the ledger too, but they are no cluster to stop here)."""
    now = ledger.clock()
    with ledger.reading() as conn:
        query = select(U.cluster).where(U.ended_at.is_(None), U.role != ROLE_NOTEBOOK).distinct()
        if user is not None:
            query = query.where(U.user == user)
        names = list(conn.scalars(query))
        if not names:
            return []
        rows = conn.execute(
            select(U.cluster, U.user, U.budget, U.profile, U.role, U.started_at, U.ended_at, U.price_per_hour_usd)
            .where(U.cluster.in_(names))
        ).all()
    clusters = []
    for name in names:
        own = [row for row in rows if row.cluster == name]
        first = min(own, key=lambda row: row.started_at)
        cost = sum(
            max(0.0, min(row.ended_at if row.ended_at is not None else now, now) - row.started_at)
            * row.price_per_hour_usd
            / 3600.0
            for row in own
        )
        workers = sum(1 for row in own if row.role == ROLE_WORKER and row.ended_at is None)
        clusters.append(
            RunningCluster(name, first.user, first.budget, first.profile, workers, first.started_at, round(cost, 6))
        )
    return sorted(clusters, key=lambda c: (c.started_at, c.name))


def owner_of(ledger: Ledger, cluster: str) -> str | None:
    """Who owns a running cluster (None: not running)."""
    with ledger.reading() as conn:
        query = select(U.user).where(U.cluster == cluster, U.ended_at.is_(None), U.role != ROLE_NOTEBOOK).limit(1)
        return conn.scalars(query).first()


def alerts_sent(ledger: Ledger, month: Month) -> list[dict]:
    with ledger.reading() as conn:
        a = AlertSent
        rows = conn.execute(
            select(a.budget, a.threshold, a.spent_usd, a.limit_usd, a.sent_at, a.mailed)
            .where(a.month == month.name)
            .order_by(a.sent_at, a.budget, a.threshold)
        ).all()
        return [
            {
                "budget": row.budget,
                "threshold": row.threshold,
                "spent_usd": row.spent_usd,
                "limit_usd": row.limit_usd,
                "sent_at": datetime.fromtimestamp(row.sent_at, UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "mailed": row.mailed,
            }
            for row in rows
        ]


def page_data(ledger: Ledger, policy: Policy, viewer: str, admin: bool, month: Month | None = None) -> dict:
    now = ledger.clock()
    month = month or month_of(now)
    budgets = budgets_for(ledger, policy, viewer, admin, month)
    return {
        "month": month.name,
        "resets_at": month.resets_at,
        "now": now,
        "budgets": budgets,
        "daily": daily_spend(ledger, month, [b["name"] for b in budgets], None if admin else viewer),
        "clusters": running_clusters(ledger, None if admin else viewer),
        "alerts": alerts_sent(ledger, month) if admin else [],
        # Admins see every user: those a budget pays for with nothing spent yet too.
        "idle_members": {
            b["name"]: sorted(
                user
                for user, payer in policy.payers.items()
                if payer == b["name"] and user not in {row["name"] for row in b["users"]}
            )
            for b in budgets
        }
        if admin
        else {},
    }

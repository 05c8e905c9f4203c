"""One metering pass: close intervals of processes that are gone, refresh heartbeats,
send threshold alerts once per period (mailed once, retried after a failed attempt),
and enforce exhaustion.

At 100% of the monthly limit: `stop` asks the backend to stop the budget's clusters
(with a reason), `block_new` admits nothing new (admission refuses), `warn` only alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from deploy.budgets.alerts import Alert, Mailer
from deploy.budgets.policy import Policy
from deploy.ledger import Ledger, Month, ProcessKey, month_of, queries
from deploy.ledger.models import AlertSent, BudgetPeriod

log = logging.getLogger("graticule.budgets")


@dataclass
class PassResult:
    closed: list[ProcessKey] = field(default_factory=list)
    to_stop: dict[str, str] = field(default_factory=dict)  # cluster -> reason
    alerts: list[Alert] = field(default_factory=list)
    exhausted: list[str] = field(default_factory=list)


def exhausted_reason(budget: str, spent: float, limit: float) -> str:
    return (
        f"stopped by graticule: budget '{budget}' is exhausted "
        f"(spent ${spent:.2f} of ${limit:.2f}; on_exhausted: stop)"
    )


def run_pass(
    ledger: Ledger, policy: Policy, mailer: Mailer, live: Collection[ProcessKey], seen_at: float | None = None
) -> PassResult:
    """`live`: the processes the backend saw alive at `seen_at` (default: now)."""
    now = ledger.clock()
    result = PassResult(closed=ledger.sweep(live, now, seen_at))
    month = month_of(now)
    dialect = postgresql if ledger.dialect == "postgresql" else sqlite
    with ledger.writing() as conn:
        spent = queries.spent_by_budget(conn, month, now, policy.budgets)
        for rule in policy.budgets.values():
            used = spent.get(rule.name, 0.0)
            percent = 100.0 * used / rule.monthly_usd
            for threshold in rule.alerts:
                if percent < threshold:
                    continue
                inserted = conn.execute(
                    dialect.insert(AlertSent)
                    .values(
                        budget=rule.name, month=month.name, threshold=threshold,
                        spent_usd=used, limit_usd=rule.monthly_usd, sent_at=now, mailed=False,
                    )
                    .on_conflict_do_nothing()
                    .returning(AlertSent.id)  # a row back only if this pass claimed the alert
                ).first()
                if inserted:
                    result.alerts.append(
                        Alert(rule.name, month.name, threshold, used, rule.monthly_usd, month.resets_at)
                    )
            if percent < 100.0:
                continue
            result.exhausted.append(rule.name)
            period = ledger.lock_period(conn, rule.name, month, rule.monthly_usd)
            if period.exhausted_at is None:
                conn.execute(update(BudgetPeriod).where(BudgetPeriod.id == period.id).values(exhausted_at=now))
                log.warning(
                    "budget '%s' exhausted: spent $%.2f of $%.2f (on_exhausted: %s)",
                    rule.name, used, rule.monthly_usd, rule.on_exhausted,
                )
            if rule.on_exhausted == "stop":
                reason = exhausted_reason(rule.name, used, rule.monthly_usd)
                for cluster in queries.running_clusters(conn, rule.name):
                    result.to_stop[cluster] = reason
    for alert in result.alerts:
        mailer.log(alert, policy.platform_name)
    # Mail outside the transaction: a slow SMTP server must not hold the ledger lock. Every
    # unmailed alert of the month is tried, so one that failed before is retried now.
    if mailer.enabled:
        for row_id, alert in _unmailed(ledger, month):
            if _claim(ledger, row_id, True) and not mailer.mail(alert, policy.platform_name):
                _claim(ledger, row_id, False)  # give it back: the next pass retries
    return result


def _unmailed(ledger: Ledger, month: Month) -> list[tuple[int, Alert]]:
    query = (
        select(
            AlertSent.id, AlertSent.budget, AlertSent.month,
            AlertSent.threshold, AlertSent.spent_usd, AlertSent.limit_usd,
        )
        .where(AlertSent.month == month.name, AlertSent.mailed.is_(False))
        .order_by(AlertSent.budget, AlertSent.threshold)
    )
    with ledger.reading() as conn:
        rows = conn.execute(query).all()
    return [
        (row.id, Alert(row.budget, row.month, row.threshold, row.spent_usd, row.limit_usd, month.resets_at))
        for row in rows
    ]


def _claim(ledger: Ledger, row_id: int, mailed: bool) -> bool:
    """Flip one alert's `mailed` flag; True if this caller flipped it. Claiming before
    mailing means two gateways on one ledger never both mail the same alert."""
    with ledger.writing() as conn:
        changed = conn.execute(
            update(AlertSent).where(AlertSent.id == row_id, AlertSent.mailed.is_(not mailed)).values(mailed=mailed)
        )
    return changed.rowcount == 1

"""Admission control: may this user start a scheduler or worker now?

Checked and recorded in one transaction, serialized per budget (the budget period row
is locked: SELECT ... FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE on SQLite), so
concurrent requests can never overshoot `max_cores`.

A request is refused when
- the budget's cores in use plus the request would exceed `max_cores`; or
- (budgets with `on_exhausted: stop` or `block_new`) the money left this month would not
  pay for everything already running plus the request for the minimum window
  (default 10 minutes). `warn` budgets are never refused for money, only alerted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Connection

from deploy.budgets.policy import BudgetRule, Policy
from deploy.errors import RuntimeFailure
from deploy.ledger import Ledger, Month, Process, queries
from deploy.ledger.periods import month_of


@dataclass(frozen=True)
class Request:
    user: str
    cluster: str
    process: str
    profile: str
    role: str  # scheduler | worker
    cores: float
    memory_bytes: int
    price_per_hour_usd: float


class BudgetExceeded(RuntimeFailure):
    """A refusal the user sees: budget, spent, limit, cores in use, when it resets."""

    def __init__(
        self,
        reason: str,
        budget: str | None = None,
        spent_usd: float = 0.0,
        limit_usd: float = 0.0,
        cores_in_use: float = 0.0,
        max_cores: int | None = None,
        resets_at: str = "",
    ) -> None:
        self.reason = reason
        self.budget = budget
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd
        self.cores_in_use = cores_in_use
        self.max_cores = max_cores
        self.resets_at = resets_at
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if self.budget is None:
            return self.reason
        percent = 100.0 * self.spent_usd / self.limit_usd if self.limit_usd else 0.0
        cap = f" of {self.max_cores}" if self.max_cores is not None else ""
        return (
            f"budget '{self.budget}' refused this request: {self.reason}. "
            f"Spent ${self.spent_usd:.2f} of ${self.limit_usd:.2f} this month ({percent:.0f}%), "
            f"{self.cores_in_use:g}{cap} cores in use; the budget resets {self.resets_at}."
        )


def _describe(cores: float, price: float, count: int) -> str:
    what = f"{count} processes, " if count > 1 else ""
    unit = "core" if cores == 1 else "cores"
    return f"{what}{cores:g} {unit} at ${price:.4g}/h"


def decide(
    conn: Connection,
    rule: BudgetRule,
    month: Month,
    now: float,
    cores: float,
    price_per_hour: float,
    min_window_s: float,
    count: int = 1,
) -> None:
    """Raise BudgetExceeded if `cores` more at `price_per_hour` more may not start now."""
    spent = queries.spent(conn, rule.name, month, now)
    held = queries.running(conn, rule.name)

    def refuse(reason: str) -> BudgetExceeded:
        return BudgetExceeded(
            reason, rule.name, spent, rule.monthly_usd, held.cores, rule.max_cores, month.resets_at
        )

    asked = _describe(cores, price_per_hour, count)
    if rule.max_cores is not None and held.cores + cores > rule.max_cores + 1e-9:
        raise refuse(f"{asked} would hold {held.cores + cores:g} cores, over max_cores {rule.max_cores}")
    if rule.on_exhausted == "warn":
        return
    remaining = rule.monthly_usd - spent
    if remaining <= 0:
        raise refuse(f"the budget is exhausted (on_exhausted: {rule.on_exhausted})")
    needed = (held.usd_per_hour + price_per_hour) * min_window_s / 3600.0
    if remaining < needed:
        window = f"{min_window_s / 60:g} min"
        raise refuse(
            f"${remaining:.2f} left cannot keep what runs plus {asked} going for {window} "
            f"(needs ${needed:.2f})"
        )


def rule_for(policy: Policy, user: str) -> BudgetRule:
    rule = policy.budget_for(user)
    if rule is None:
        raise BudgetExceeded(
            f"user '{user}' has no budget to pay for Dask clusters: "
            "ask an admin to give you or your group a `budget:` in platform.yaml"
        )
    return rule


def admit(ledger: Ledger, policy: Policy, request: Request) -> int:
    """Check and record in one transaction; returns the new open interval's id."""
    rule = rule_for(policy, request.user)
    with ledger.writing() as conn:
        now = ledger.clock()
        month = month_of(now)
        ledger.lock_period(conn, rule.name, month, rule.monthly_usd)
        existing = ledger.find_open(conn, request.cluster, request.process)
        if existing is not None:  # a retried start: it is already admitted and charged once
            return existing
        decide(conn, rule, month, ledger.clock(), request.cores, request.price_per_hour_usd, policy.min_window_s)
        # The start is taken after the decision read what runs: a stop committed before that
        # read ended earlier, so the ledger never shows more than max_cores at any instant.
        process = Process(budget=rule.name, **vars(request))
        return ledger.open_interval(conn, process, ledger.clock())


def check(ledger: Ledger, policy: Policy, user: str, cores: float, price_per_hour: float, count: int = 1) -> None:
    """A dry run (nothing recorded): would `count` processes be admitted now? For scale requests."""
    rule = rule_for(policy, user)
    with ledger.reading() as conn:
        now = ledger.clock()
        decide(conn, rule, month_of(now), now, cores, price_per_hour, policy.min_window_s, count)


def headroom(ledger: Ledger, policy: Policy, user: str, cores_each: float, price_each: float) -> int:
    """How many more processes of this size the user's budget would admit now (a dry run)."""
    rule = rule_for(policy, user)
    with ledger.reading() as conn:
        now = ledger.clock()
        month = month_of(now)
        spent = queries.spent(conn, rule.name, month, now)
        held = queries.running(conn, rule.name)
    limits = []
    if rule.max_cores is not None and cores_each > 0:
        limits.append(math.floor((rule.max_cores - held.cores + 1e-9) / cores_each))
    if rule.on_exhausted != "warn":
        remaining = rule.monthly_usd - spent
        if remaining <= 0:
            return 0
        if price_each > 0:
            affordable_rate = remaining * 3600.0 / policy.min_window_s  # USD/h the window allows
            limits.append(math.floor((affordable_rate - held.usd_per_hour) / price_each + 1e-9))
    return max(0, min(limits)) if limits else 1_000_000

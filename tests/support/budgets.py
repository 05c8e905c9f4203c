"""Requests and recorded spend for the budget edge tests (fixtures: tests/support/budget_fixtures.py).

Prices are chosen so that every figure is exact in binary floating point: a $10 budget
and a process at $36/h spend exactly $0.01 per second.
"""

from __future__ import annotations

from deploy.budgets import Budgets, Request
from deploy.ledger import ManualClock, Process

TEAM = "team: {monthly_usd: 10, max_cores: 8, alerts: [50, 80, 100], on_exhausted: stop}\nsolo: {monthly_usd: 1}\n"
PER_SECOND = 36.0  # $/h: $0.01 a second, 1% of the team budget a second


def request(user: str, process: str, cores: float = 2, price: float = 0.0, cluster: str = "c1") -> Request:
    role = "scheduler" if process == cluster else "worker"
    return Request(user, cluster, process, "small", role, cores, 1 << 30, price)


def spend(budgets: Budgets, clock: ManualClock, seconds: float, price: float = PER_SECOND) -> None:
    """Record a past team process of `seconds` at `price` straight in the ledger (no admission
    decision): the spend is exact, and nothing of it runs afterwards."""
    process = Process("alice", "team", "spender", "spender", "small", "scheduler", 0, 0, price)
    with budgets.ledger.writing() as conn:
        budgets.ledger.open_interval(conn, process, clock())
    clock.advance(seconds)
    budgets.cluster_stopped("spender")

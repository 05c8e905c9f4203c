"""Budgets that hold: which budget pays, admission control, metering, alerts.

`Budgets` (deploy.budgets.guard) is the one object the gateway backend talks to.
"""

from deploy.budgets.admission import BudgetExceeded, Request
from deploy.budgets.guard import Budgets
from deploy.budgets.policy import DEFAULT_METER_INTERVAL_S, DEFAULT_MIN_WINDOW_S, BudgetRule, Policy

__all__ = [
    "DEFAULT_METER_INTERVAL_S",
    "DEFAULT_MIN_WINDOW_S",
    "BudgetExceeded",
    "BudgetRule",
    "Budgets",
    "Policy",
    "Request",
]

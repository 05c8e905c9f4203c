"""The budget rules the gateway enforces, taken from platform.yaml.

Which budget pays for a user's clusters (`render.entitlements.budget_of`, the one place
the rule lives): the user's own `budget:` if set, else the budget of their groups.
A user whose groups name different budgets must have a personal `budget:` (a
validation error in `render/checks.py` otherwise), so the answer is never ambiguous.
A user with no budget at all may not start Dask clusters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from deploy.runtime import env
from render import units
from render.entitlements import budget_of
from render.gateway_spec import GatewaySpec
from render.schema import Platform

DEFAULT_MIN_WINDOW_S = 600.0  # a request must be affordable for at least this long
DEFAULT_METER_INTERVAL_S = 30.0
MIN_WINDOW_ENV, METER_INTERVAL_ENV = env.BUDGET_MIN_WINDOW, env.METER_INTERVAL


@dataclass(frozen=True)
class BudgetRule:
    name: str
    monthly_usd: float
    max_cores: int | None
    alerts: tuple[int, ...]
    on_exhausted: str  # stop | block_new | warn


@dataclass(frozen=True)
class Policy:
    budgets: dict[str, BudgetRule]
    payers: dict[str, str | None]  # user -> paying budget
    alert_emails: tuple[str, ...] = ()
    min_window_s: float = DEFAULT_MIN_WINDOW_S
    platform_name: str = "graticule"
    meter_interval_s: float = DEFAULT_METER_INTERVAL_S

    @classmethod
    def from_platform(
        cls,
        platform: Platform,
        min_window_s: float | None = None,
        meter_interval_s: float | None = None,
    ) -> Policy:
        budgets = {
            name: BudgetRule(name, b.monthly_usd, b.max_cores, tuple(b.alerts), b.on_exhausted)
            for name, b in platform.budgets.items()
        }
        return cls(
            budgets=budgets,
            payers={user.name: budget_of(platform, user) for user in platform.users},
            alert_emails=tuple(platform.integrations.alerts.email),
            min_window_s=_setting(min_window_s, MIN_WINDOW_ENV, DEFAULT_MIN_WINDOW_S),
            meter_interval_s=_setting(meter_interval_s, METER_INTERVAL_ENV, DEFAULT_METER_INTERVAL_S),
            platform_name=platform.name,
        )

    @classmethod
    def from_gateway_spec(cls, spec: GatewaySpec) -> Policy:
        """From the rendered gateway spec (render.gateway_spec): what the gateway process
        knows of platform.yaml. Window and interval from the environment."""
        budgets = {
            name: BudgetRule(name, b.monthly_usd, b.max_cores, tuple(b.alerts), b.on_exhausted)
            for name, b in spec.budgets.items()
        }
        return cls(
            budgets=budgets,
            payers={user: grants.budget for user, grants in spec.users.items()},
            alert_emails=tuple(spec.alert_emails),
            min_window_s=_setting(None, MIN_WINDOW_ENV, DEFAULT_MIN_WINDOW_S),
            meter_interval_s=_setting(None, METER_INTERVAL_ENV, DEFAULT_METER_INTERVAL_S),
            platform_name=spec.name,
        )

    def budget_for(self, user: str) -> BudgetRule | None:
        name = self.payers.get(user)
        return self.budgets.get(name) if name else None


def _setting(given: float | None, env: str, default: float) -> float:
    """An explicit value, else the environment (seconds or a duration such as '10m'), else the default."""
    if given is not None:
        return given
    text = os.environ.get(env)
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        return float(units.parse_duration(text))

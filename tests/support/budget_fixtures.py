"""Fixtures for the budget edge tests, loaded with `pytest_plugins`: a manual clock and
Budgets on a fresh SQLite ledger that the clock drives."""

from __future__ import annotations

import pytest

from deploy.budgets import Budgets, Policy
from deploy.budgets.alerts import Mailer
from deploy.ledger import Ledger, ManualClock
from tests.support.budgets import TEAM
from tests.support.ledger import MID_NOVEMBER, make_platform


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MID_NOVEMBER)


@pytest.fixture
def make_budgets(tmp_path, clock):
    opened: list[Budgets] = []

    def make(budgets: str = TEAM, mailer: Mailer | None = None, name: str = "ledger", **policy) -> Budgets:
        ledger = Ledger.open(f"sqlite:///{tmp_path / name}.sqlite", clock=clock)
        guard = Budgets(ledger, Policy.from_platform(make_platform(budgets), **policy), mailer or Mailer(()))
        opened.append(guard)
        return guard

    yield make
    for guard in opened:
        guard.ledger.close()

"""`platform usage`: spend per day of the month, as a bar chart (plain `#` bars when piped).

A real SQLite ledger with a manual clock: alice runs 2 hours at $3/h on the 2nd of a
month, bob 1 hour at $3/h across midnight into the 3rd (half an hour each side).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from deploy.budgets import Budgets, Policy, Request
from deploy.budgets.alerts import Mailer
from deploy.budgets.daily import chart_lines, spend_per_day
from deploy.ledger import Ledger, ManualClock, month_named
from tests.conftest import REPO
from tests.support.ledger import make_platform, platform_text

BUDGETS = "team: {monthly_usd: 100, max_cores: 8}\nsolo: {monthly_usd: 50}\n"
MONTH = "2026-03"


def _at(day: int, hour: float) -> float:
    return datetime(2026, 3, day, tzinfo=UTC).timestamp() + hour * 3600


@pytest.fixture
def ledger_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    clock = ManualClock(_at(2, 10))
    budgets = Budgets(Ledger.open(url, clock=clock), Policy.from_platform(make_platform(BUDGETS)), Mailer(()))
    budgets.admit(Request("alice", "c1", "c1", "small", "scheduler", 2, 1 << 30, 3.0))
    clock.set(_at(2, 12))
    budgets.cluster_stopped("c1")
    clock.set(_at(2, 23.5))
    budgets.admit(Request("bob", "c2", "c2", "small", "scheduler", 1, 1 << 30, 3.0))
    clock.set(_at(3, 0.5))
    budgets.cluster_stopped("c2")
    budgets.ledger.close()
    (tmp_path / "platform.yaml").write_text(platform_text(BUDGETS))
    return url, tmp_path / "platform.yaml"


def test_spend_per_day_splits_at_midnight_and_adds_up(ledger_file):
    url, _ = ledger_file
    ledger = Ledger.open(url, clock=ManualClock(_at(5, 12)))
    try:
        days = dict(spend_per_day(ledger, month_named(MONTH)))
        solo = dict(spend_per_day(ledger, month_named(MONTH), budget="solo"))
    finally:
        ledger.close()
    assert list(days) == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]  # up to now
    assert days["2026-03-01"] == 0.0 and days["2026-03-04"] == 0.0
    assert days["2026-03-02"] == pytest.approx(6.0 + 1.5) and days["2026-03-03"] == pytest.approx(1.5)
    assert solo["2026-03-02"] == pytest.approx(1.5)  # bob's budget only


def test_bars_are_scaled_to_the_busiest_day():
    lines = chart_lines([("2026-03-01", 0.0), ("2026-03-02", 8.0), ("2026-03-03", 2.0), ("2026-03-04", 0.01)])
    assert lines[0] == "spend per day (UTC)"
    assert [line.count("#") for line in lines[1:]] == [0, 40, 10, 1]
    assert lines[2].endswith("$8.00")


def test_usage_prints_the_chart_plain_when_piped_and_json_is_unchanged(ledger_file):
    url, config = ledger_file
    run = [sys.executable, "-m", "deploy.cli.main", "usage", str(config), "--db", url, "--month", MONTH]
    text = subprocess.run(run, cwd=REPO, capture_output=True, text=True, timeout=120, check=True).stdout
    assert "spend per day (UTC)" in text and "\x1b" not in text
    chart = text.split("spend per day (UTC)\n")[1].splitlines()
    assert len(chart) == 31 and chart[1].count("#") == 40 and chart[1].endswith("$7.50")
    report = json.loads(subprocess.run([*run, "--json"], cwd=REPO, capture_output=True, text=True, timeout=120,
                                       check=True).stdout)
    assert set(report) == {"month", "resets_at", "budgets"}

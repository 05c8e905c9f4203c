"""`platform usage` on a ledger in SQLite (state dir) and in PostgreSQL (--db URL)."""

from __future__ import annotations

import json
import time

import pytest

from deploy.budgets import Budgets, Policy, Request
from deploy.budgets.alerts import Mailer
from deploy.cli.main import main
from deploy.ledger import Ledger, ManualClock, month_of
from tests.support.ledger import ledger_url, make_platform, platform_text  # noqa: F401
from tests.support.postgres import postgres_server  # noqa: F401

pytestmark = pytest.mark.slow

BUDGETS = "team: {monthly_usd: 10, max_cores: 8}\nsolo: {monthly_usd: 2}\n"


@pytest.fixture
def recorded(ledger_url, tmp_path):  # noqa: F811
    """alice: 2 cores at $3.6/h for 1000 s (still running); bob: $7.2/h for 100 s, stopped."""
    clock = ManualClock(time.time() - 5000)  # recorded in the past: open intervals run on to now
    budgets = Budgets(Ledger.open(ledger_url, clock=clock), Policy.from_platform(make_platform(BUDGETS)), Mailer(()))
    budgets.admit(Request("alice", "c1", "c1", "small", "scheduler", 2, 1 << 30, 3.6))
    budgets.admit(Request("bob", "c2", "c2", "small", "scheduler", 1, 1 << 30, 7.2))
    clock.advance(100)
    budgets.cluster_stopped("c2")
    budgets.ledger.close()
    (tmp_path / "platform.yaml").write_text(platform_text(BUDGETS))
    return ledger_url, tmp_path / "platform.yaml", month_of(clock()).name


def test_usage_per_budget_and_user_as_json(recorded, capsys):
    url, config, month = recorded
    assert main(["usage", str(config), "--db", url, "--month", month, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["month"] == month
    team, solo = report["budgets"]
    assert team["name"] == "team" and team["limit_usd"] == 10.0 and team["max_cores"] == 8
    assert team["cores_in_use"] == 2.0 and team["clusters_running"] == 1
    assert team["spent_usd"] > 0.1  # open: charged up to the real now, past the recorded start
    assert solo["spent_usd"] == pytest.approx(0.2) and solo["percent"] == pytest.approx(10.0)
    bob = {"name": "bob", "spent_usd": pytest.approx(0.2), "cores_in_use": 0.0, "clusters_running": 0}
    assert solo["users"] == [bob]


def test_usage_filters_and_text(recorded, capsys):
    url, config, month = recorded
    assert main(["usage", str(config), "--db", url, "--month", month, "--user", "bob"]) == 0
    text = capsys.readouterr().out
    assert "solo: $0.20 of $2.00 (10.0%), 0 cores in use, 0 clusters running" in text
    assert "  bob: $0.20" in text and "alice" not in text
    assert main(["usage", str(config), "--db", url, "--month", "1999-10", "--budget", "solo", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["budgets"][0]["spent_usd"] == 0.0


def test_usage_bad_input_and_missing_ledger(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GRATICULE_LEDGER_URL", raising=False)
    monkeypatch.delenv("GRATICULE_STATE_DIR", raising=False)
    config = tmp_path / "platform.yaml"
    config.write_text(platform_text(BUDGETS))
    assert main(["usage", str(config), "--month", "2026-13", "--state", str(tmp_path)]) == 2
    assert "--month: '2026-13' is not a month" in capsys.readouterr().err
    assert main(["usage", str(config), "--budget", "tema", "--state", str(tmp_path)]) == 2
    assert "unknown budget 'tema'" in capsys.readouterr().err
    assert main(["usage", str(config), "--state", str(tmp_path / "none")]) == 1
    assert "no usage ledger at" in capsys.readouterr().err
    assert main(["usage", str(config), "--db", "postgresql://nobody@127.0.0.1:1/x"]) == 1
    assert "cannot read the usage ledger" in capsys.readouterr().err


def test_usage_reads_the_default_sqlite_ledger_in_the_state_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GRATICULE_LEDGER_URL", raising=False)
    Ledger.open(state_dir=tmp_path / "state").close()
    config = tmp_path / "platform.yaml"
    config.write_text(platform_text(BUDGETS))
    assert main(["usage", str(config), "--state", str(tmp_path / "state")]) == 0
    assert "team: $0.00 of $10.00 (0.0%), 0/8 cores in use, 0 clusters running" in capsys.readouterr().out

"""`platform jobs run|list|logs|cancel` on a state directory's usage database (no
platform running: the runs stay queued, which is what these commands may see)."""

from __future__ import annotations

import json

import pytest

from deploy.cli.main import main

JOBS = """
jobs:
  daily:
    owner: alice
    run: {script: daily.py}
"""


@pytest.fixture
def config(tmp_path, example_text):
    path = tmp_path / "platform.yaml"
    path.write_text(example_text.replace("apiVersion: graticule/v1", "apiVersion: graticule/v2") + JOBS)
    return path


def jobs(config, *args: str) -> list[str]:
    return ["jobs", *args, "--file", str(config), "--state", str(config.parent / "state")]


def test_without_a_database_the_commands_say_so(config, capsys):
    assert main(jobs(config, "list")) == 1
    assert "no usage database" in capsys.readouterr().err


def test_run_list_logs_and_cancel(config, capsys):
    from deploy.ledger import Ledger

    Ledger.open(None, config.parent / "state").close()  # what `platform up` leaves behind
    assert main(jobs(config, "run", "daily")) == 0
    assert "queued run 1 of job 'daily'" in capsys.readouterr().out
    assert main(jobs(config, "list", "--json")) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert [run[key] for key in ("id", "job", "owner", "kind", "status")] == [1, "daily", "alice", "manual", "queued"]
    assert main(jobs(config, "list")) == 0
    assert "daily" in capsys.readouterr().out
    assert main(jobs(config, "logs", "1")) == 0
    assert capsys.readouterr().out == ""  # not started yet
    assert main(jobs(config, "cancel", "1")) == 0
    assert "cancel requested" in capsys.readouterr().out
    assert main(jobs(config, "run", "weekly")) == 2
    assert "no job 'weekly'" in capsys.readouterr().err
    for action in ("logs", "cancel"):
        assert main(jobs(config, action, "7")) == 2
        assert "no run 7" in capsys.readouterr().err

"""`platform users add|remove|list`: in-place edits that keep every other byte."""

from __future__ import annotations

import json
import os

import pytest

from deploy.cli.main import main


@pytest.fixture
def config(tmp_path, example_text):
    path = tmp_path / "platform.yaml"
    path.write_text(example_text)
    return path


def test_add_appends_one_user_and_keeps_everything_else(config, example_text):
    command = ["users", "add", "dave", "--group", "ocean", "--email", "dave@oceanlab.org", "--file", str(config)]
    assert main(command) == 0
    after = config.read_text()
    added = "  - name: dave\n    email: dave@oceanlab.org\n    groups: [ocean]\n"
    assert after.replace(added, "", 1) == example_text
    assert after.index(added) > after.index("  - name: carol")  # appended after the last user
    assert after.index(added) < after.index("budgets:")


def test_remove_drops_exactly_that_user(config, example_text):
    assert main(["users", "remove", "bob", "--file", str(config)]) == 0
    removed = (
        "  - name: bob\n    email: bob@oceanlab.org\n    groups: [students]\n"
        "    budget: bob-thesis          # a personal budget wins over the group's\n"
    )
    assert removed in example_text
    assert config.read_text() == example_text.replace(removed, "", 1)


def test_add_then_remove_round_trips(config, example_text):
    assert main(["users", "add", "erin", "-g", "students", "-g", "admins", "--file", str(config)]) == 0
    assert main(["users", "remove", "erin", "--file", str(config)]) == 0
    assert config.read_text() == example_text


def test_invalid_edit_writes_nothing(config, example_text, capsys):
    assert main(["users", "add", "erin", "--group", "nosuchgroup", "--file", str(config)]) == 2
    assert "unknown group 'nosuchgroup'" in capsys.readouterr().err
    assert main(["users", "add", "alice", "--group", "ocean", "--file", str(config)]) == 2
    assert main(["users", "add", "Bad Name", "--group", "ocean", "--file", str(config)]) == 2
    assert main(["users", "remove", "nobody", "--file", str(config)]) == 2
    assert config.read_text() == example_text


def test_failed_write_leaves_the_file_intact(config, example_text, monkeypatch):
    def failing_replace(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    assert main(["users", "add", "dave", "--group", "ocean", "--file", str(config)]) == 1
    assert config.read_text() == example_text
    assert [p.name for p in config.parent.iterdir()] == ["platform.yaml"]  # no temp file left


def test_list_reports_entitlements(config, capsys):
    assert main(["users", "list", str(config), "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["alice"]["admin"] is True and rows["alice"]["budget"] == "ocean"
    assert rows["bob"]["budget"] == "bob-thesis" and rows["bob"]["profiles"] == ["small"]
    assert rows["carol"]["environments"] == ["default", "ml"]

"""The pull-request comment: the change in words, the plan, the cost, the files.

Pure functions over build directories written by `python -m deploy.gitops.ci snapshot`
(real renders of real platform.yaml files; no cloud needed) and `platform comment`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.gitops import ci
from deploy.gitops.changes import describe
from deploy.gitops.comment import MARKER, fixed_monthly_usd, render_comment
from deploy.gitops.plan_summary import summarize
from deploy.gitops.snapshot import read
from render.validate import validate_text

EXAMPLE = (Path(__file__).resolve().parent.parent / "platform.yaml").read_text()


def edit(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def head_of(base: str) -> str:
    """dave joins ocean, students' budget goes 50 -> 80, the gpu profile goes away."""
    text = edit(
        base,
        ("  - name: carol\n", "  - name: dave\n    groups: [ocean]\n  - name: carol\n"),
        ("  students:\n    monthly_usd: 50", "  students:\n    monthly_usd: 80"),
        ("profiles: [small, large, gpu]", "profiles: [small, large]"),
    )
    return re.sub(r"  gpu:\n    cpu: 8\n(?:    .*\n)+?    price_per_hour_usd: .*\n", "", text)


def snapshot_dirs(tmp_path: Path, base: str, head: str) -> tuple[Path, Path]:
    for side, text in (("base-src", base), ("head-src", head)):
        (tmp_path / side).mkdir()
        (tmp_path / side / "platform.yaml").write_text(text)
    ci.snapshot(tmp_path / "base-src", tmp_path / "base")
    ci.snapshot(tmp_path / "head-src", tmp_path / "head")
    return tmp_path / "base", tmp_path / "head"


def test_changes_in_words():
    base = validate_text(EXAMPLE)
    head = validate_text(
        edit(
            head_of(EXAMPLE),
            ("    groups: [students]\n    budget: bob-thesis", "    groups: [students, admins]\n    budget: students"),
            ("      - scikit-learn\n", "      - scikit-learn\n      - polars\n"),
        )
    )
    sections = describe(base, head).sections
    assert sections["people"] == [
        "user `dave` added to ocean",
        "user `bob` added to admins",
        "user `bob`: budget bob-thesis -> students",
    ]
    assert sections["budgets"] == ["budget `students`: monthly_usd 50 -> 80"]
    assert sections["profiles"] == ["profile `gpu` removed"]
    assert sections["groups"] == ["group `ocean`: profiles - gpu"]
    assert sections["environments"] == ["environment `ml`: packages + polars"]
    assert not describe(base, base)


def test_comment_from_two_builds(tmp_path):
    aws = EXAMPLE.replace("target: local", "target: aws")
    base_dir, head_dir = snapshot_dirs(tmp_path, aws, head_of(aws))
    plan = {
        "resource_changes": [
            {"address": "aws_launch_template.gpu", "mode": "managed", "change": {"actions": ["delete"]}},
            {"address": "aws_budgets_budget.students", "mode": "managed", "change": {"actions": ["update"]}},
            {"address": "aws_instance.hub", "mode": "managed", "change": {"actions": ["delete", "create"]}},
            {"address": "aws_vpc.main", "mode": "managed", "change": {"actions": ["no-op"]}},
            {"address": "data.aws_ami.debian", "mode": "data", "change": {"actions": ["read"]}},
        ]
    }
    (head_dir / "plan.json").write_text(json.dumps(summarize(plan, "aws")))
    # a cost change, so that the delta is not zero
    cost = json.loads((head_dir / "cost.json").read_text())
    before = fixed_monthly_usd(json.loads((base_dir / "cost.json").read_text()))
    cost["fixed_monthly"]["total_usd"] = before + 12.5
    (head_dir / "cost.json").write_text(json.dumps(cost))

    text = subprocess.run(
        [sys.executable, "-m", "deploy.cli.main", "comment", "--base", str(base_dir), "--head", str(head_dir)],
        capture_output=True, text=True, check=True,
    ).stdout
    assert text.startswith(MARKER + "\n")
    assert "platform.yaml is valid" in text
    assert "- user `dave` added to ocean" in text
    assert "- budget `students`: monthly_usd 50 -> 80" in text
    assert "- profile `gpu` removed" in text
    assert "Plan: 1 to add, 1 to change, 2 to destroy." in text
    assert "- `aws_launch_template.gpu`\n" in text
    assert "- `aws_instance.hub` (replaced)" in text
    assert f"| ${before:,.2f} | ${before + 12.5:,.2f} | +$12.50 |" in text
    assert "- removed `workers/gpu.json`" in text
    assert "- changed `terraform/aws/main.tf.json` (" in text


def test_invalid_head_is_shown_with_located_errors(tmp_path):
    base_dir, head_dir = snapshot_dirs(tmp_path, EXAMPLE, EXAMPLE.replace("monthly_usd: 50", "monthly_usd: -5"))
    assert json.loads((head_dir / "validation.json").read_text())["valid"] is False
    text = render_comment(read(base_dir), read(head_dir))
    assert "platform.yaml is invalid" in text
    assert re.search(r"`platform.yaml:\d+:\d+`: `budgets.students.monthly_usd`", text)


def test_first_pull_request_has_no_base(tmp_path):
    head = tmp_path / "head-src"
    head.mkdir()
    (head / "platform.yaml").write_text(EXAMPLE)
    assert ci.snapshot(head, tmp_path / "head")
    text = render_comment(read(tmp_path / "missing"), read(tmp_path / "head"))
    assert "new platform `oceanlab`" in text
    assert "added `hub/" in text


def test_plan_failure_is_quoted(tmp_path):
    _, head_dir = snapshot_dirs(tmp_path, EXAMPLE, EXAMPLE)
    (head_dir / "plan-error.txt").write_text("Error: AccessDenied\n  reading the state\n")
    text = render_comment(read(tmp_path / "base"), read(head_dir))
    assert "The plan failed" in text and "    Error: AccessDenied" in text
    assert "No rendered file changes." in text


@pytest.mark.parametrize("text", ["", "not json", "[]"])
def test_unreadable_plan_is_not_planned(tmp_path, text):
    _, head_dir = snapshot_dirs(tmp_path, EXAMPLE, EXAMPLE)
    (head_dir / "plan.json").write_text(text)
    assert "Not planned" in render_comment(read(tmp_path / "base"), read(head_dir))


def test_stale_lock_makes_the_head_invalid(tmp_path):
    from deploy.environments import lock

    stale = {
        name: lock.Entry(python="3.11", spec_hash="0" * 16, packages=("dask==2026.8.0",))
        for name in ("default", "ml")
    }
    source = tmp_path / "head-src"
    source.mkdir()
    (source / "platform.yaml").write_text(EXAMPLE)
    (source / "environments.lock").write_bytes(lock.dumps(stale))
    assert ci.snapshot(source, tmp_path / "head") is False
    errors = json.loads((tmp_path / "head" / "validation.json").read_text())["errors"]
    assert {error["path"] for error in errors} == {"environments.default", "environments.ml"}
    assert "platform.yaml is invalid" in render_comment(read(tmp_path / "none"), read(tmp_path / "head"))

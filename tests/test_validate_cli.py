"""`platform validate` on good files, its output formats and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deploy.cli.main import main
from tests.conftest import EXAMPLE_COPY, REPO, SHARED_EXAMPLE


def run_cli(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli.main", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_repository_platform_yaml_is_valid():
    result = run_cli("validate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: oceanlab (3 users, 3 groups, 3 budgets, 3 profiles, 2 environments)")


def test_shared_example_is_valid_as_written():
    result = run_cli("validate", str(EXAMPLE_COPY))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: oceanlab (3 users, 3 groups, 3 budgets, 3 profiles, 2 environments)")


@pytest.mark.skipif(not SHARED_EXAMPLE.exists(), reason="no ../shared/platform.example.yaml beside this clone")
def test_the_tests_copy_of_the_shared_example_is_current():
    assert EXAMPLE_COPY.read_text() == SHARED_EXAMPLE.read_text(), (
        f"{EXAMPLE_COPY} differs from {SHARED_EXAMPLE}: copy the contract again"
    )


def test_json_output_for_valid_and_invalid(tmp_path, capsys, example_text):
    good = tmp_path / "platform.yaml"
    good.write_text(example_text)
    assert main(["validate", "--json", str(good)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True and report["users"] == 3 and report["name"] == "oceanlab"

    bad = tmp_path / "bad.yaml"
    bad.write_text(example_text.replace("cpu: 16", "cpu: -1").replace("groups: [students]", "groups: [nobody]"))
    assert main(["validate", "--json", str(bad)]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    paths = {error["path"] for error in report["errors"]}
    assert paths == {"profiles.large.cpu", "users[1].groups[0]"}
    assert all(error["line"] > 1 and error["col"] >= 1 for error in report["errors"])


def test_every_error_is_reported_at_once(tmp_path, capsys, example_text):
    bad = tmp_path / "platform.yaml"
    bad.write_text(
        example_text.replace("memory: 8GiB", "memory: lots")
        .replace("budget: ocean\n", "budget: oceans\n")
        .replace("max_workers: 100", "max_workers: 0")
    )
    assert main(["validate", str(bad)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "groups.ocean.budget",
        "profiles.small.memory",
        "dask.max_workers",
    ]


def test_internal_failure_is_exit_1_without_traceback(tmp_path, monkeypatch, capsys, example_text):
    import render.validate

    def explode(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(render.validate.Platform, "model_validate", explode)
    good = tmp_path / "platform.yaml"
    good.write_text(example_text)
    assert main(["validate", str(good)]) == 1
    err = capsys.readouterr().err
    assert "disk on fire" in err and "Traceback" not in err


def test_huge_file_is_refused_located(tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_text("# padding\n" * 120_000)
    result = run_cli("validate", str(huge))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{huge}:1:1: (file): file is ")
    assert "Traceback" not in result.stderr


def test_missing_file_is_exit_2(tmp_path):
    result = run_cli("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "no such file" in result.stderr

"""`platform plan / apply / destroy`: exit codes, confirmations, readable Terraform errors.

The real thing against moto is in tests/test_bootstrap_apply.py and tests/test_gitops_flow.py;
these are the quick paths that need no cloud at all.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from deploy.cli import terminal
from deploy.cli.common import UsageError
from tests.support.terraform import provider_mirror_or_skip

ROOT = Path(__file__).resolve().parent.parent


def platform_cli(cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str = ""):
    return subprocess.run(["platform", *args], cwd=cwd, env={**os.environ, **(env or {})}, input=stdin,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def local_repo(tmp_path):
    (tmp_path / "platform.yaml").write_text((ROOT / "platform.yaml").read_text())
    return tmp_path


def test_plan_on_local_has_nothing_to_plan(local_repo):
    proc = platform_cli(local_repo, "plan", "--json", "--detailed-exitcode")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["has_changes"] is False and summary["target"] == "local"
    assert "nothing to plan" in summary["note"]


def test_destroy_asks_for_the_name_and_refuses_without_a_terminal(local_repo):
    proc = platform_cli(local_repo, "destroy", stdin="oceanlab\n")
    assert proc.returncode == 2
    assert "stdin is not a terminal" in proc.stderr and "Traceback" not in proc.stderr


def test_confirm_needs_the_exact_answer(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("oceanlabs\n"))
    assert terminal.confirm("Type its name:", "oceanlab") is False
    monkeypatch.setattr("sys.stdin", Terminal(" oceanlab \n"))
    assert terminal.confirm("Type its name:", "oceanlab") is True
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    with pytest.raises(UsageError):
        terminal.confirm("Apply?", "yes")


def test_invalid_config_is_exit_2_and_located(local_repo):
    path = local_repo / "platform.yaml"
    path.write_text(path.read_text().replace("monthly_usd: 50", "monthly_usd: -1"))
    for command in (["plan"], ["apply", "--auto-approve"], ["destroy", "--yes"]):
        proc = platform_cli(local_repo, *command)
        assert proc.returncode == 2, (command, proc.stderr)
        assert "platform.yaml:" in proc.stderr and "budgets.students.monthly_usd" in proc.stderr


def test_terraform_failure_is_a_short_summary_with_the_log_on_disk(local_repo):
    provider_mirror_or_skip()
    path = local_repo / "platform.yaml"
    path.write_text(path.read_text().replace("target: local", "target: aws"))
    env = {key: "" for key in os.environ if key.startswith("AWS_")}
    env.update({"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"})
    proc = platform_cli(local_repo, "plan", env=env)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    (start,) = [n for n, line in enumerate(lines) if "terraform init failed (full log: " in line]
    streamed, summary = lines[:start], lines[start:]
    # Terraform's own lines were streamed while it ran; the failure then ends in a short summary
    assert any("Error: No valid credential sources found" in line for line in streamed), proc.stderr
    assert len(summary) <= 15, proc.stderr
    log = Path(proc.stderr.split("full log: ", 1)[1].split(")", 1)[0])
    assert log.is_file() and "## stderr" in log.read_text()
    assert (local_repo / "build" / "manifest.json").is_file()  # rendered before Terraform ran

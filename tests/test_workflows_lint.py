"""The GitHub Actions workflows: generated from one source, checked in, and lint-clean.

actionlint is the real linter (installed from PyPI as a wheel carrying its binary, see
scripts/test.sh); with shellcheck on PATH it also checks every `run:` script.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.gitops import ci
from deploy.gitops.workflows import WORKFLOWS, workflow_files
from render.validate import load_platform

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "platform.yaml"


def _actionlint() -> str:
    found = shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is not installed (scripts/test.sh installs it)")
    return found


def _variants():
    platform = load_platform(EXAMPLE)
    ci_block = platform.ci.model_copy(update={"runner": "self-hosted"})
    return {
        "repository": workflow_files(platform, project=True),
        "init-local": workflow_files("local"),
        "init-aws": workflow_files("aws"),
        "init-gcp": workflow_files("gcp"),
        "aws": workflow_files(platform.model_copy(update={"target": "aws"})),
        "gcp": workflow_files(platform.model_copy(update={"target": "gcp"})),
        "aws-self-hosted": workflow_files(platform.model_copy(update={"target": "aws", "ci": ci_block})),
    }


def _lint(directory: Path) -> subprocess.CompletedProcess[str]:
    workflows = sorted(str(path) for path in (directory / ".github" / "workflows").glob("*.yml"))
    assert workflows, f"no workflows under {directory}"
    # actionlint reads .github/actionlint.yaml of the repository it runs in: give it one.
    subprocess.run(["git", "init", "-q", str(directory)], check=True)
    return subprocess.run(
        [_actionlint(), "-no-color", *workflows], cwd=directory, capture_output=True, text=True, check=False
    )


def test_checked_in_workflows_are_the_generated_ones():
    generated = workflow_files(load_platform(EXAMPLE), project=True)
    for path, text in generated.items():
        assert (ROOT / path).read_text() == text, f"{path} is stale: regenerate it"
    assert ci.stale_workflows(EXAMPLE, ROOT) == []
    checked_in = {p.relative_to(ROOT).as_posix() for p in (ROOT / ".github/workflows").glob("*.yml")}
    assert checked_in == {path for path in generated if path.startswith(".github/workflows/")}


def test_actionlint_reports_nothing_on_this_repository():
    proc = subprocess.run(
        [_actionlint(), "-no-color"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("variant", sorted(_variants()))
def test_actionlint_reports_nothing_on_generated_workflows(variant, tmp_path):
    files = _variants()[variant]
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    proc = _lint(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_does_report_a_broken_workflow(tmp_path):
    """The linter really runs: a workflow with an undefined step output and a shell bug fails."""
    text = workflow_files("aws")[".github/workflows/platform-apply.yml"]
    broken = text.replace("${{ steps.ctx.outputs.apply_role }}", "${{ steps.nope.outputs.apply_role }}")
    broken = broken.replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latset")
    (tmp_path / ".github/workflows").mkdir(parents=True)
    (tmp_path / ".github/workflows/platform-apply.yml").write_text(broken)
    proc = _lint(tmp_path)
    assert proc.returncode != 0
    assert "nope" in proc.stdout and "ubuntu-latset" in proc.stdout


def test_self_hosted_runs_apply_and_drift_in_the_vpc_but_never_pull_requests():
    platform = load_platform(EXAMPLE)
    ci_block = platform.ci.model_copy(update={"runner": "self-hosted"})
    files = workflow_files(platform.model_copy(update={"target": "aws", "ci": ci_block}))
    label = f"graticule-{platform.name}"
    assert f"runs-on: [self-hosted, linux, {label}]" in files[".github/workflows/platform-apply.yml"]
    assert f"runs-on: [self-hosted, linux, {label}]" in files[".github/workflows/platform-drift.yml"]
    assert "runs-on: ubuntu-latest" in files[".github/workflows/platform-pr.yml"]
    # the runner VM holds no cloud role: the jobs there get theirs through OIDC, as on hosted runners
    apply, drift = files[".github/workflows/platform-apply.yml"], files[".github/workflows/platform-drift.yml"]
    assert "role-to-assume: ${{ steps.ctx.outputs.apply_role }}" in apply
    assert "role-to-assume: ${{ steps.ctx.outputs.plan_role }}" in drift
    assert apply.index("configure-aws-credentials") < apply.index("run: platform apply")
    # and the admin is told which runner group admits which workflows
    for workflow in ("platform-apply", "platform-drift"):
        assert f"#   {platform.ci.repository}/.github/workflows/{workflow}.yml@refs/heads/main" in apply
    assert f'runner group "{label}"' in apply and f'runner group "{label}"' in drift
    assert "runner group" not in workflow_files(platform.model_copy(update={"target": "aws"}))[
        ".github/workflows/platform-apply.yml"]
    assert label in files[".github/actionlint.yaml"]


def test_every_workflow_is_generated():
    assert set(WORKFLOWS) == {"platform-pr", "platform-apply", "platform-drift"}
    assert ".github/workflows/tests.yml" in workflow_files("local", project=True)
    assert ".github/workflows/tests.yml" not in workflow_files("local")

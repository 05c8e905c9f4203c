"""The GitOps loop, played for real: pull request -> sticky comment -> merge -> apply.

In a temporary git repository (target aws) with a base commit of platform.yaml on main
and a head commit on a branch (a user added, a budget raised, a profile removed), each
workflow's `run:` steps are run in order as read from the workflow files that graticule
generates (tests/support/workflow_runner.py), against a moto server standing in for AWS:
the real `platform` CLI, the real Terraform with the real AWS provider, the S3 backend
with its lockfile in moto. The state bucket is made the way `platform bootstrap` would
(tests/test_bootstrap_apply.py applies bootstrap itself).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.gitops.comment import MARKER
from deploy.gitops.workflows import workflow_files
from render.terraform import synthesize_target
from render.validate import validate_text
from tests.support.moto_server import running_moto
from tests.support.moto_terraform import moto_server_env, moto_terraform_env
from tests.support.terraform import provider_mirror_or_skip
from tests.support.workflow_runner import StepFailed, run_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # real Terraform applies: ~6 min on CI, ~10 loaded
ROOT = Path(__file__).resolve().parent.parent
NAME = "oceanlab"
GPU_TEMPLATE = f"{NAME}-gpu"
ARTIFACTS = ROOT / "tests" / "artifacts"


def base_config() -> str:
    text = (ROOT / "platform.yaml").read_text().replace("target: local", "target: aws")
    return text.replace("    zones: 2 ", "    zones: 1 ")


def head_config(base: str) -> str:
    """dave joins ocean, students' budget goes 50 -> 80, the gpu profile goes away."""
    text = base
    for old, new in (
        ("  - name: carol\n", "  - name: dave\n    email: dave@oceanlab.org\n    groups: [ocean]\n  - name: carol\n"),
        ("  students:\n    monthly_usd: 50", "  students:\n    monthly_usd: 80"),
        ("profiles: [small, large, gpu]", "profiles: [small, large]"),
    ):
        assert old in text
        text = text.replace(old, new, 1)
    text, removed = re.subn(r"  gpu:\n    cpu: 8\n(?:    .*\n)+?    price_per_hour_usd: .*\n", "", text)
    assert removed == 1
    return text


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    provider_mirror_or_skip()
    root = tmp_path_factory.mktemp("gitops")
    base, head = base_config(), head_config(base_config())
    origin = root / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    git(origin, "config", "user.email", "admin@oceanlab.org")
    git(origin, "config", "user.name", "admin")
    (origin / ".gitignore").write_text("/build/\n.platform/\n")
    (origin / "platform.yaml").write_text(base)
    for path, text in workflow_files(validate_text(base)).items():  # what `platform init` writes
        (origin / path).parent.mkdir(parents=True, exist_ok=True)
        (origin / path).write_text(text)
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "platform")
    git(origin, "checkout", "-q", "-b", "dave-and-budgets")
    (origin / "platform.yaml").write_text(head)
    git(origin, "commit", "-q", "-am", "dave joins ocean; students get 80; no more gpu")
    git(origin, "checkout", "-q", "main")
    mains = [
        json.loads(synthesize_target(validate_text(text), "aws")["terraform/aws/main.tf.json"])
        for text in (base, head)
    ]
    with running_moto(env=moto_server_env(root / "moto"), log=root / "moto.log") as server:
        s3 = server.client("s3")  # the bucket `platform bootstrap` makes
        s3.create_bucket(Bucket=f"{NAME}-tfstate", CreateBucketConfiguration={"LocationConstraint": server.region})
        s3.put_bucket_versioning(Bucket=f"{NAME}-tfstate", VersioningConfiguration={"Status": "Enabled"})
        env = moto_terraform_env(server, root / "tf", mains)
        yield {"root": root, "origin": origin, "server": server, "env": env}


def checkout(world, ref: str, name: str) -> Path:
    """actions/checkout: a fresh clone at `ref`, with history (fetch-depth: 0)."""
    clone = world["root"] / name
    shutil.rmtree(clone, ignore_errors=True)
    git(world["root"], "clone", "-q", str(world["origin"]), name)
    git(clone, "checkout", "-q", ref)
    return clone


def play(world, workflow: str, job: str, ref: str, name: str, context: dict[str, str] | None = None):
    clone = checkout(world, ref, name)
    stood_in: dict[str, dict] = {}
    result = run_job(
        clone / ".github" / "workflows" / workflow,
        job,
        workdir=clone,
        runner_temp=world["root"] / f"{name}-temp",
        context={"github.run_id": "4242", **(context or {})},
        env=world["env"],
        stand_ins={"actions/github-script": lambda inputs: stood_in.setdefault("github-script", inputs)},
    )
    return clone, result


def test_pull_request_comment_then_merge_applies_it(world):
    origin, server = world["origin"], world["server"]
    base_sha = git(origin, "rev-parse", "main")
    head_sha = git(origin, "rev-parse", "dave-and-budgets")

    # main as it runs today: the apply workflow of the base commit
    _, applied = play(world, "platform-apply.yml", "apply", base_sha, "main-before")
    assert "Install graticule" in applied.ran and "Apply" in applied.ran
    assert "aws-actions/configure-aws-credentials" in applied.stood_in
    ec2 = server.client("ec2")
    templates = {t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]}
    assert GPU_TEMPLATE in templates

    # the pull request
    pr_context = {
        "github.event.pull_request.base.sha": base_sha,
        "github.event.pull_request.number": "7",
    }
    _, pr = play(world, "platform-pr.yml", "plan", head_sha, "pull-request", pr_context)
    assert pr.outputs["snapshot"]["valid"] == "true"
    assert pr.outputs["ctx"]["plan_role"] == f"arn:aws:iam::123456789012:role/{NAME}-ci-plan"
    comment = (world["root"] / "pull-request-temp" / "comment.md").read_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "pull-request-comment.md").write_text(comment)  # kept for people to read
    assert comment.startswith(MARKER)
    assert comment in pr.summary  # also the job summary
    assert "platform.yaml is valid" in comment
    assert "- user `dave` added to ocean" in comment
    assert "- budget `students`: monthly_usd 50 -> 80" in comment
    assert "- profile `gpu` removed" in comment
    plan = json.loads((world["root"] / "pull-request-temp" / "head" / "plan.json").read_text())
    gpu_destroys = [address for address in plan["destroys"] if "gpu" in address]
    assert gpu_destroys and plan["destroy"] == len(plan["destroys"])
    assert "to destroy." in comment
    for address in plan["destroys"]:
        assert f"- `{address}`" in comment
    costs = [
        json.loads((world["root"] / "pull-request-temp" / side / "cost.json").read_text())["fixed_monthly"]["total_usd"]
        for side in ("base", "head")
    ]
    delta = costs[1] - costs[0]
    assert f"| ${costs[0]:,.2f} | ${costs[1]:,.2f} | {'+' if delta >= 0 else '-'}${abs(delta):,.2f} |" in comment

    # the merge, and the apply workflow of main
    git(origin, "merge", "-q", "--ff-only", "dave-and-budgets")
    clone, merged = play(world, "platform-apply.yml", "apply", git(origin, "rev-parse", "main"), "main-after")
    templates = {t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]}
    assert GPU_TEMPLATE not in templates and {f"{NAME}-small", f"{NAME}-large"} <= templates
    outputs = json.loads((clone / "build" / "outputs.json").read_text())
    assert "dave" in outputs["worker_instance_profile_by_user"]
    assert "### Platform outputs" in merged.summary and "`hub_instance_id`" in merged.summary
    # the state lives in the bucket from platform.yaml, locked with a lock file, now unlocked
    keys = [o["Key"] for o in server.client("s3").list_objects_v2(Bucket=f"{NAME}-tfstate").get("Contents", [])]
    assert keys == [f"graticule/{NAME}/terraform.tfstate"]

    # someone changes the platform by hand: the nightly drift check says so, and fails
    server.client("logs").put_retention_policy(logGroupName=outputs["log_group_name"], retentionInDays=1)
    with pytest.raises(StepFailed) as failed:
        play(world, "platform-drift.yml", "drift", git(origin, "rev-parse", "main"), "nightly")
    assert "::error::drift" in str(failed.value)
    summary = (world["root"] / "nightly-temp" / "_step_summary.md").read_text()
    assert "### Drift check" in summary and "aws_cloudwatch_log_group." in summary

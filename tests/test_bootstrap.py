"""`platform bootstrap`: the state bucket and the CI trust, rendered and applied for real.

AWS: against a moto server, `platform bootstrap --target aws` (local state in the state
dir), then `platform apply` of the platform into the bucket it made, then `platform
destroy`: nothing of the platform is left, only what bootstrap made (the state bucket
and the CI trust). GCP: no apply is possible offline; the rendered stack is checked
against the google provider's published schema (tests/data/google_bootstrap_schema.json,
taken by scripts/extract_google_schema.py --type google_iam_workload_identity_pool
--type google_iam_workload_identity_pool_provider, keeping the bootstrap's types).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from render.bootstrap import render_bootstrap
from render.terraform import synthesize_target
from render.validate import validate_text
from tests.support.moto_server import CREDENTIALS, running_moto
from tests.support.moto_terraform import moto_server_env, moto_terraform_env
from tests.support.terraform import provider_mirror_or_skip
from tests.test_terraform_gcp import schema_problems

ROOT = Path(__file__).resolve().parent.parent
NAME = "oceanlab"
BUCKET = f"{NAME}-tfstate"
REPO = "oceanlab/platform"
SUB = "token.actions.githubusercontent.com:sub"


def config(target: str = "aws", runner: str = "github-hosted") -> str:
    text = (ROOT / "platform.yaml").read_text().replace("target: local", f"target: {target}")
    return text.replace("    zones: 2 ", "    zones: 1 ").replace("runner: github-hosted", f"runner: {runner}")


def stack(target: str, runner: str = "github-hosted") -> dict:
    files = render_bootstrap(validate_text(config(target, runner)), target)
    return json.loads(files[f"bootstrap/{target}/main.tf.json"])


# --- rendered --------------------------------------------------------------------------


def test_aws_trust_is_scoped_to_the_repository():
    resources = stack("aws")["resource"]
    provider = resources["aws_iam_openid_connect_provider"]["github"]
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["client_id_list"] == ["sts.amazonaws.com"]
    plan = json.loads(resources["aws_iam_role"]["ci_plan"]["assume_role_policy"])
    apply = json.loads(resources["aws_iam_role"]["ci_apply"]["assume_role_policy"])
    assert plan["Statement"][0]["Condition"]["StringEquals"][SUB] == [
        f"repo:{REPO}:pull_request", f"repo:{REPO}:ref:refs/heads/main"
    ]
    assert apply["Statement"] == [{
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            SUB: [f"repo:{REPO}:environment:platform-apply"],
        }},
        "Effect": "Allow",
        "Principal": {"Federated": "${aws_iam_openid_connect_provider.github.arn}"},
    }]
    attached = {k: v["policy_arn"] for k, v in resources["aws_iam_role_policy_attachment"].items()}
    assert attached == {
        "ci_plan_read_only": "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "ci_apply_admin": "arn:aws:iam::aws:policy/AdministratorAccess",
    }
    # local state beside the working directory: nothing machine-specific in the render
    assert stack("aws")["terraform"]["backend"] == {"local": {"path": "terraform.tfstate"}}


def test_self_hosted_runner_holds_the_apply_role():
    apply = json.loads(stack("aws", "self-hosted")["resource"]["aws_iam_role"]["ci_apply"]["assume_role_policy"])
    assert {"Service": "ec2.amazonaws.com"} in [s["Principal"] for s in apply["Statement"]]
    rendered = synthesize_target(validate_text(config("aws", "self-hosted")), "aws")
    main = json.loads(rendered["terraform/aws/main.tf.json"])
    runner = main["resource"]["aws_instance"]["ci_runner"]
    assert runner["associate_public_ip_address"] is False
    assert runner["subnet_id"].startswith("${aws_subnet.private_")
    assert main["resource"]["aws_iam_instance_profile"]["ci_runner"]["role"] == f"{NAME}-ci-apply"
    assert f"--url https://github.com/{REPO}" in runner["user_data"]
    assert "--labels graticule-oceanlab" in runner["user_data"]
    groups = main["resource"]["aws_security_group"]
    assert "ci_runner" in groups
    ingress = main["resource"]["aws_vpc_security_group_ingress_rule"].values()
    assert not [r for r in ingress if r["security_group_id"] == "${aws_security_group.ci_runner.id}"]
    hosted = json.loads(synthesize_target(validate_text(config("aws")), "aws")["terraform/aws/main.tf.json"])
    assert "ci_runner" not in hosted["resource"]["aws_instance"]


def test_gcp_bootstrap_renders_against_the_provider_schema():
    rendered = stack("gcp")
    schema = json.loads((ROOT / "tests" / "data" / "google_bootstrap_schema.json").read_text())
    problems = []
    for kind, named in rendered["resource"].items():
        if kind not in schema["resource_schemas"]:
            problems.append(f"{kind}: not in hashicorp/google {schema['provider_version']}")
            continue
        for name, body in named.items():
            problems += schema_problems(f"{kind}.{name}", body, schema["resource_schemas"][kind]["block"], top=True)
    assert problems == []
    resources = rendered["resource"]
    bucket = resources["google_storage_bucket"]["state"]
    assert bucket["versioning"] == {"enabled": True}
    assert bucket["public_access_prevention"] == "enforced" and bucket["uniform_bucket_level_access"] is True
    provider = resources["google_iam_workload_identity_pool_provider"]["github_actions"]
    assert provider["attribute_condition"] == f"assertion.repository == '{REPO}'"
    bindings = resources["google_service_account_iam_member"].values()
    members = sorted(binding["member"].rsplit("/subject/", 1)[1] for binding in bindings)
    assert members == [f"repo:{REPO}:environment:platform-apply", f"repo:{REPO}:pull_request",
                       f"repo:{REPO}:ref:refs/heads/main"]
    assert set(rendered["output"]) >= {"workload_identity_provider", "plan_service_account", "apply_service_account"}


def test_bootstrap_without_ci_block_is_a_usage_error(tmp_path):
    text = config().split("\nci:\n")[0] + "\n"
    (tmp_path / "platform.yaml").write_text(text + "integrations: {}\n")
    proc = subprocess.run(["platform", "bootstrap", "--target", "aws", "--print"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "ci:" in proc.stderr and "Traceback" not in proc.stderr


# --- applied against moto ----------------------------------------------------------------


def platform_cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["platform", *args], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, f"platform {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_bootstrap_apply_destroy_leaves_only_the_bootstrap(tmp_path):
    provider_mirror_or_skip()
    (tmp_path / "platform.yaml").write_text(config())
    main = json.loads(synthesize_target(validate_text(config()), "aws")["terraform/aws/main.tf.json"])
    with running_moto(env=moto_server_env(tmp_path / "moto"), log=tmp_path / "moto.log") as server:
        platform_env = moto_terraform_env(server, tmp_path / "tf", [main])
        # bootstrap: only the provider's endpoints (its stack has none of the platform's resources)
        provider_only = tmp_path / "bootstrap-overrides"
        provider_only.mkdir()
        override = json.loads((Path(platform_env["GRATICULE_TF_OVERRIDES"]) / "moto_override.tf.json").read_text())
        (provider_only / "moto_override.tf.json").write_text(json.dumps({"provider": override["provider"]}))
        bootstrap_env = {**platform_env, "GRATICULE_TF_OVERRIDES": str(provider_only)}
        bootstrap_env.pop("TF_CLI_ARGS_plan")
        bootstrap_env.pop("GRATICULE_TF_BACKEND_CONFIG")

        done = platform_cli(tmp_path, bootstrap_env, "bootstrap", "--target", "aws", "--auto-approve")
        assert f"plan_role_arn = arn:aws:iam::123456789012:role/{NAME}-ci-plan" in done.stdout
        assert (tmp_path / ".platform" / NAME / "bootstrap" / "aws" / "stack" / "terraform.tfstate").is_file()
        s3 = server.client("s3")
        assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
        rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4
        assert "aws:SecureTransport" in s3.get_bucket_policy(Bucket=BUCKET)["Policy"]
        iam = server.client("iam")
        providers = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
        assert [p["Arn"].split("/")[-1] for p in providers] == ["token.actions.githubusercontent.com"]
        trust = iam.get_role(RoleName=f"{NAME}-ci-apply")["Role"]["AssumeRolePolicyDocument"]
        trust = trust if isinstance(trust, dict) else json.loads(trust)
        assert trust["Statement"][0]["Condition"]["StringEquals"][SUB] == [f"repo:{REPO}:environment:platform-apply"]
        attached = iam.list_attached_role_policies(RoleName=f"{NAME}-ci-plan")["AttachedPolicies"]
        assert [p["PolicyName"] for p in attached] == ["ReadOnlyAccess"]
        again = platform_cli(tmp_path, bootstrap_env, "bootstrap", "--target", "aws", "--auto-approve")
        assert "No changes." in again.stdout
        # moto serves plain HTTP here and enforces that TLS-only policy: lift it for the test
        s3.delete_bucket_policy(Bucket=BUCKET)

        before = {vpc["VpcId"] for vpc in server.client("ec2").describe_vpcs()["Vpcs"]}
        platform_cli(tmp_path, platform_env, "apply", "--auto-approve")
        outputs = json.loads((tmp_path / "build" / "outputs.json").read_text())
        assert outputs["vpc_id"] not in before
        state = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
        assert [o["Key"] for o in state] == [f"graticule/{NAME}/terraform.tfstate"]

        platform_cli(tmp_path, platform_env, "destroy", "--yes")
        assert not (tmp_path / "build" / "outputs.json").exists()
        ec2 = server.client("ec2")
        assert {vpc["VpcId"] for vpc in ec2.describe_vpcs()["Vpcs"]} == before
        running = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                   if i["State"]["Name"] != "terminated"]
        assert running == []
        assert ec2.describe_launch_templates()["LaunchTemplates"] == []
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET]
        roles = {r["RoleName"] for r in iam.list_roles()["Roles"]}
        assert roles == {f"{NAME}-ci-plan", f"{NAME}-ci-apply"}
        assert iam.list_instance_profiles()["InstanceProfiles"] == []
        assert server.client("logs").describe_log_groups()["logGroups"] == []
        assert server.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
        assert CREDENTIALS  # moto's fake keys only: nothing real was ever used

"""`platform bootstrap` applied for real.

AWS: against a moto server, `platform bootstrap --target aws` (local state in the state
dir), then `platform apply` of the platform into the bucket it made, then a pull
request's `platform plan` with only the CI plan role's credentials while moto enforces
IAM (the role's real policies, as bootstrap made them), then `platform destroy`: nothing
of the platform is left, only what bootstrap made (the state bucket and the CI trust).
The rendered stack's checks are in tests/test_bootstrap.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from deploy.cloud_stack import BACKEND_CONFIG_ENV, OVERRIDES_ENV
from render.terraform import synthesize_target
from render.validate import validate_text
from tests.conftest import REPO as CHECKOUT
from tests.support.bootstrap import BUCKET, NAME, REPO, SUB, config
from tests.support.moto_server import CREDENTIALS, MotoServer, running_moto
from tests.support.moto_terraform import moto_server_env, moto_terraform_env
from tests.support.terraform import provider_mirror_or_skip


def cli(*args: str) -> list[str]:
    """The CLI of this checkout, run by the interpreter running the tests (not whatever
    `platform` is first on PATH)."""
    return [sys.executable, "-m", "deploy.cli.main", *args]


def with_repo(env: Mapping[str, str]) -> dict[str, str]:
    inherited = env.get("PYTHONPATH")
    return {**env, "PYTHONPATH": os.pathsep.join([str(CHECKOUT), *([inherited] if inherited else [])])}


def test_bootstrap_without_ci_block_is_a_usage_error(tmp_path):
    text = config().split("\nci:\n")[0] + "\n"
    (tmp_path / "platform.yaml").write_text(text + "integrations: {}\n")
    proc = subprocess.run(cli("bootstrap", "--target", "aws", "--print"), cwd=tmp_path, env=with_repo(os.environ),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "ci:" in proc.stderr and "Traceback" not in proc.stderr


# --- applied against moto ----------------------------------------------------------------


def platform_cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cli(*args), cwd=cwd, env=with_repo({**os.environ, **env}),
                          capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, f"platform {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


# moto names two S3 requests differently from IAM (HeadBucket is s3:ListBucket for IAM,
# GetPublicAccessBlock is s3:GetBucketPublicAccessBlock): allowed under moto's names too.
MOTO_ACTION_NAMES = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:HeadBucket", "s3:GetPublicAccessBlock"], "Resource": "*"},
]}


# moto recomputes SigV4 signatures wrongly when a query value is URL-encoded (the S3
# backend lists `prefix=env%3A%2F` at init), so its server skips the signature check (a
# sitecustomize on its PYTHONPATH, in that process only); the IAM policy check stays on.
MOTO_SIGNATURE_PATCH = "import moto.iam.access_control as ac\nac.IAMRequestBase.check_signature = lambda self: None\n"


def moto_env_checking_policies(directory: Path) -> dict[str, str]:
    directory.mkdir(parents=True)
    (directory / "sitecustomize.py").write_text(MOTO_SIGNATURE_PATCH)
    inherited = os.environ.get("PYTHONPATH")
    return {**moto_server_env(directory / "moto"),
            "PYTHONPATH": os.pathsep.join([str(directory), *([inherited] if inherited else [])])}


@contextlib.contextmanager
def iam_enforced(server: MotoServer):
    """moto checks each request's signature and the caller's IAM policies (its actions, and
    for S3 its resources) until the block ends (moto's /moto-api/reset-auth)."""
    def after(count: str) -> None:
        request = urllib.request.Request(f"{server.url}/moto-api/reset-auth", data=count.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})  # not a form: the raw body
        urllib.request.urlopen(request, timeout=10).close()

    after("0")
    try:
        yield
    finally:
        after("inf")


def plan_role_env(server: MotoServer, platform_env: dict[str, str], directory: Path) -> dict[str, str]:
    """`platform_env` with the CI plan role's short-lived credentials in place of moto's test
    keys, also in the provider override and the S3 backend config (which carry their own)."""
    role = f"arn:aws:iam::{server.account_id}:role/{NAME}-ci-plan"
    credentials = server.client("sts").assume_role(RoleArn=role, RoleSessionName="pull-request")["Credentials"]
    keys = {"access_key": credentials["AccessKeyId"], "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"]}
    overrides = directory / "overrides"
    overrides.mkdir(parents=True)
    override = json.loads((Path(platform_env[OVERRIDES_ENV]) / "moto_override.tf.json").read_text())
    override["provider"]["aws"].update(keys)
    (overrides / "moto_override.tf.json").write_text(json.dumps(override))
    lines = [line for line in Path(platform_env[BACKEND_CONFIG_ENV]).read_text().splitlines()
             if not line.startswith(("access_key", "secret_key"))]
    backend = directory / "plan.s3.tfbackend"
    backend.write_text("\n".join([*lines, *(f'{key} = "{value}"' for key, value in keys.items())]) + "\n")
    return {
        **platform_env,
        OVERRIDES_ENV: str(overrides),
        BACKEND_CONFIG_ENV: str(backend),
        "AWS_ACCESS_KEY_ID": keys["access_key"],
        "AWS_SECRET_ACCESS_KEY": keys["secret_key"],
        "AWS_SESSION_TOKEN": keys["token"],
    }


@pytest.mark.slow
@pytest.mark.timeout(1800)  # real Terraform apply and destroy: ~4.5 min on CI, ~7 loaded
def test_bootstrap_apply_destroy_leaves_only_the_bootstrap(tmp_path):
    provider_mirror_or_skip()
    (tmp_path / "platform.yaml").write_text(config())
    main = json.loads(synthesize_target(validate_text(config()), "aws")["terraform/aws/main.tf.json"])
    with running_moto(env=moto_env_checking_policies(tmp_path / "moto-patch"), log=tmp_path / "moto.log") as server:
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
        assert [p["PolicyName"] for p in attached] == ["ViewOnlyAccess"]
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

        # A pull request's plan with nothing but the plan role's permissions, enforced by moto
        # on every request (state read, lock taken and released, every resource refreshed).
        # moto's own limits: it ignores NotResource, so the role's deny of other objects is
        # checked on the rendered JSON (test_aws_plan_role_reads_configuration_but_no_data).
        iam.put_role_policy(RoleName=f"{NAME}-ci-plan", PolicyName="moto-action-names",
                            PolicyDocument=json.dumps(MOTO_ACTION_NAMES))
        plan_env = plan_role_env(server, platform_env, tmp_path / "plan-role")
        as_plan_role = {"aws_access_key_id": plan_env["AWS_ACCESS_KEY_ID"],
                        "aws_secret_access_key": plan_env["AWS_SECRET_ACCESS_KEY"],
                        "aws_session_token": plan_env["AWS_SESSION_TOKEN"]}
        with iam_enforced(server):
            planned = subprocess.run(cli("plan", "--detailed-exitcode"), cwd=tmp_path,
                                     env=with_repo({**os.environ, **plan_env}), capture_output=True, text=True,
                                     timeout=900, check=False)
            # ...and the same credentials may not overwrite the state nor change anything
            for service, call in (
                ("s3", lambda c: c.put_object(Bucket=BUCKET, Key=f"graticule/{NAME}/terraform.tfstate", Body=b"{}")),
                ("s3", lambda c: c.delete_object(Bucket=BUCKET, Key=f"graticule/{NAME}/terraform.tfstate")),
                ("ec2", lambda c: c.create_vpc(CidrBlock="10.99.0.0/16")),
            ):
                client = boto3.client(service, endpoint_url=server.url, region_name=server.region, **as_plan_role)
                with pytest.raises(ClientError, match="AccessDenied"):
                    call(client)
        iam.delete_role_policy(RoleName=f"{NAME}-ci-plan", PolicyName="moto-action-names")
        assert planned.returncode == 0, f"{planned.stdout}\n{planned.stderr}"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == [
            f"graticule/{NAME}/terraform.tfstate"]  # the lock was released

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

"""`platform bootstrap`: the state bucket and the CI trust, rendered and applied for real.

AWS: against a moto server, `platform bootstrap --target aws` (local state in the state
dir), then `platform apply` of the platform into the bucket it made, then a pull
request's `platform plan` with only the CI plan role's credentials while moto enforces
IAM (the role's real policies, as bootstrap made them), then `platform destroy`: nothing
of the platform is left, only what bootstrap made (the state bucket and the CI trust).
Least privilege of the CI roles and the runner VM is also checked on the rendered JSON.
GCP: no apply is possible offline; the rendered stack is checked
against the google provider's published schema (tests/data/google_bootstrap_schema.json,
taken by scripts/extract_google_schema.py --type google_iam_workload_identity_pool
--type google_iam_workload_identity_pool_provider, keeping the bootstrap's types).
"""

from __future__ import annotations

import contextlib
import fnmatch
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
from modules.aws.runner import RUNNER_SHA256
from render.bootstrap import render_bootstrap
from render.errors import ConfigErrors
from render.terraform import synthesize_target
from render.validate import validate_text
from tests.conftest import REPO as CHECKOUT
from tests.support.moto_server import CREDENTIALS, MotoServer, running_moto
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
        "ci_plan_view_only": "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess",
        "ci_apply_admin": "arn:aws:iam::aws:policy/AdministratorAccess",
    }
    # local state beside the working directory: nothing machine-specific in the render
    assert stack("aws")["terraform"]["backend"] == {"local": {"path": "terraform.tfstate"}}


# Reads that return users' data or secrets rather than configuration: a pull request's
# plan must be allowed none of them (outside its own state).
DATA_READS = (
    "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes", "secretsmanager:GetSecretValue",
    "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "kms:Decrypt",
    "dynamodb:GetItem", "dynamodb:Scan", "logs:GetLogEvents", "logs:FilterLogEvents",
)
STATE_OBJECTS = f"${{aws_s3_bucket.state.arn}}/graticule/{NAME}/"
# The IAM prefix whose reads refresh each resource type of the platform stack.
SERVICE_OF_TYPE = {
    "acm": "acm", "budgets": "budgets", "cloudwatch": "logs", "iam": "iam", "kms": "kms",
    "lb": "elasticloadbalancing", "s3": "s3",
    **{kind: "ec2" for kind in ("default", "eip", "flow", "instance", "internet", "launch", "nat", "route",
                                "security", "subnet", "vpc")},
}


def _statements(policy: dict) -> list[dict]:
    listed = policy["Statement"]
    return listed if isinstance(listed, list) else [listed]


def _as_list(value) -> list[str]:
    return value if isinstance(value, list) else [value]


def _plan_role_policies() -> tuple[list[str], list[dict]]:
    """(managed policy names, inline statements) of the rendered plan role."""
    resources = stack("aws")["resource"]
    managed = [v["policy_arn"].rsplit("/", 1)[1] for v in resources["aws_iam_role_policy_attachment"].values()
               if v["role"] == "${aws_iam_role.ci_plan.name}"]
    inline = [statement for v in resources["aws_iam_role_policy"].values() if v["role"] == "${aws_iam_role.ci_plan.id}"
              for statement in _statements(json.loads(v["policy"]))]
    return managed, inline


def _allows(statement: dict, action: str) -> bool:
    return statement["Effect"] == "Allow" and any(
        fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in _as_list(statement["Action"])
    )


def test_aws_plan_role_reads_configuration_but_no_data():
    from moto.iam.aws_managed_policies import aws_managed_policies_data  # AWS's documents, as moto ships them

    managed, inline = _plan_role_policies()
    assert managed == ["ViewOnlyAccess"]  # not ReadOnlyAccess: that one reads every S3 object
    documents = json.loads(aws_managed_policies_data)
    managed_statements = [st for name in managed for st in _statements(documents[name]["Document"])]
    for statement in managed_statements:
        granted = [a for a in DATA_READS if _allows(statement, a)]
        assert granted == [], f"ViewOnlyAccess grants {granted}"
    for statement in inline:
        for action in DATA_READS:
            if _allows(statement, action):
                # only the platform's own state (and lock) objects
                assert action == "s3:GetObject" and _as_list(statement["Resource"]) == [f"{STATE_OBJECTS}*"]
    # whatever is attached later, no object outside the state is readable
    deny = [st for st in inline if st["Effect"] == "Deny"]
    assert deny == [{"Sid": "NoOtherObjects", "Effect": "Deny", "Action": "s3:GetObject*",
                     "NotResource": f"{STATE_OBJECTS}*"}]
    # writes: lock files only
    writes = [st for st in inline if st["Effect"] == "Allow" and any(
        a.startswith("s3:") and not a.startswith(("s3:Get", "s3:List")) for a in _as_list(st["Action"]))]
    assert writes == [{"Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"],
                       "Resource": f"{STATE_OBJECTS}*.tflock"}]
    assert not any(a in ("*", "s3:*", "s3:Get*", "s3:GetObject*") for st in inline if st["Effect"] == "Allow"
                   for a in _as_list(st["Action"]))


def test_aws_plan_role_can_read_every_service_of_the_platform_stack():
    """Each resource type of the platform stack (self-hosted: the most types) has its
    service's configuration reads in the plan role; a new type must be thought about."""
    rendered = synthesize_target(validate_text(config("aws", "self-hosted")), "aws")
    main = json.loads(rendered["terraform/aws/main.tf.json"])
    _, inline = _plan_role_policies()
    allowed = {a.split(":")[0] for st in inline if st["Effect"] == "Allow" for a in _as_list(st["Action"])}
    missing = {}
    for kind in main["resource"]:
        service = SERVICE_OF_TYPE.get(kind.split("_")[1])
        if service not in allowed:
            missing[kind] = service
    assert missing == {}
    # what the S3 backend does during a plan: read the state, take and release the lock
    lock = f"{STATE_OBJECTS}terraform.tfstate.tflock"
    for action, resource in (("s3:GetObject", f"{STATE_OBJECTS}terraform.tfstate"), ("s3:PutObject", lock),
                             ("s3:DeleteObject", lock), ("s3:ListBucket", "${aws_s3_bucket.state.arn}")):
        assert any(_allows(st, action) and fnmatch.fnmatchcase(resource, _as_list(st["Resource"])[0])
                   for st in inline), action


def test_self_hosted_runner_holds_no_ci_role():
    apply = json.loads(stack("aws", "self-hosted")["resource"]["aws_iam_role"]["ci_apply"]["assume_role_policy"])
    # GitHub's OIDC alone: no EC2 trust, so no VM can hold the apply role
    assert [s["Principal"] for s in apply["Statement"]] == [
        {"Federated": "${aws_iam_openid_connect_provider.github.arn}"}
    ]
    rendered = synthesize_target(validate_text(config("aws", "self-hosted")), "aws")
    main = json.loads(rendered["terraform/aws/main.tf.json"])
    resources = main["resource"]
    runner = resources["aws_instance"]["ci_runner"]
    assert runner["associate_public_ip_address"] is False
    assert runner["subnet_id"].startswith("${aws_subnet.private_")
    assert runner["metadata_options"] == {"http_endpoint": "enabled", "http_tokens": "required",
                                          "http_put_response_hop_limit": 1}
    # its own role: EC2 trust, one inline policy reading the registration token, nothing attached
    assert resources["aws_iam_instance_profile"]["ci_runner"]["role"] == "${aws_iam_role.ci_runner.name}"
    role = resources["aws_iam_role"]["ci_runner"]
    assert json.loads(role["assume_role_policy"])["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}}
    ]
    attached = [a for a in resources["aws_iam_role_policy_attachment"].values() if "ci_runner" in a["role"]]
    assert attached == []
    inline = [json.loads(p["policy"]) for p in resources["aws_iam_role_policy"].values()
              if p["role"] == "${aws_iam_role.ci_runner.id}"]
    assert inline == [{"Version": "2012-10-17", "Statement": [{
        "Action": "ssm:GetParameter", "Effect": "Allow",
        "Resource": f"arn:aws:ssm:us-west-2:123456789012:parameter/graticule/{NAME}/ci/runner-registration-token",
    }]}]
    # registers into the restricted runner group of the organization, from a verified archive
    user_data = runner["user_data"]
    assert f"--url https://github.com/{REPO.split('/')[0]} " in user_data
    assert "--runnergroup graticule-oceanlab" in user_data and "--labels graticule-oceanlab" in user_data
    assert f'echo "{RUNNER_SHA256["x64"]}  runner.tar.gz" | sha256sum --check --strict -' in user_data
    assert user_data.index("sha256sum --check") < user_data.index("tar xzf runner.tar.gz")
    # no inbound at all; out: HTTPS only
    assert "ci_runner" in resources["aws_security_group"]
    group = "${aws_security_group.ci_runner.id}"
    ingress = resources["aws_vpc_security_group_ingress_rule"].values()
    assert not [r for r in ingress if r["security_group_id"] == group]
    egress = [r for r in resources["aws_vpc_security_group_egress_rule"].values() if r["security_group_id"] == group]
    assert [(r["ip_protocol"], r["from_port"], r["to_port"]) for r in egress] == [("tcp", 443, 443)]
    hosted = json.loads(synthesize_target(validate_text(config("aws")), "aws")["terraform/aws/main.tf.json"])
    assert "ci_runner" not in hosted["resource"]["aws_instance"]


@pytest.mark.parametrize("target", ["gcp", "local", "aws-without-egress"])
def test_self_hosted_runner_without_a_runner_vm_is_a_located_error(target):
    text = config(target.split("-")[0], "self-hosted").replace("  instance: { aws: t3.large }",
                                                               "  instance: { aws: t3.large, gcp: n2-standard-4 }")
    if target == "aws-without-egress":  # no GitHub login either: that needs egress too
        text = text.replace("egress: nat", "egress: none", 1).replace("provider: github ", "provider: local  ")
    with pytest.raises(ConfigErrors) as raised:
        validate_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("  runner: self-hosted"))
    printed = [str(issue) for issue in raised.value.issues]
    assert len(printed) == 1 and f":{line}:11: ci.runner: " in printed[0] and "wait forever" in printed[0], printed


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
    # the plan account reads the state and writes only its lock files: no overwriting or
    # deleting the state from a pull request
    plan_member = "serviceAccount:${google_service_account.ci_plan.email}"
    on_bucket = {(b["role"], b.get("condition", {}).get("expression"))
                 for b in resources["google_storage_bucket_iam_member"].values() if b["member"] == plan_member}
    lock_only = (f"resource.name.startsWith('projects/_/buckets/{BUCKET}/objects/graticule/{NAME}/') "
                 "&& resource.name.endsWith('.tflock')")
    assert on_bucket == {("roles/storage.objectViewer", None), ("roles/storage.objectUser", lock_only)}
    project_roles = {b["role"] for b in resources["google_project_iam_member"].values() if b["member"] == plan_member}
    assert not [r for r in project_roles if r.startswith("roles/storage.") or r in ("roles/editor", "roles/owner")]


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

"""`platform bootstrap`, rendered: the state bucket and the CI trust as JSON. Least privilege
of the CI roles and the runner VM is checked on the rendered AWS stack. GCP: no apply is
possible offline; the rendered stack is checked against the google provider's published
schema (tests/data/google_bootstrap_schema.json, taken by scripts/extract_google_schema.py
--type google_iam_workload_identity_pool --type google_iam_workload_identity_pool_provider,
keeping the bootstrap's types). Applied for real against moto: tests/test_bootstrap_apply.py.
"""

from __future__ import annotations

import fnmatch
import json

import pytest

from modules.aws.runner import RUNNER_SHA256
from render.errors import ConfigErrors
from render.terraform import synthesize_target
from render.validate import validate_text
from tests.support.bootstrap import BUCKET, NAME, REPO, ROOT, SUB, config, stack
from tests.support.gcp_render import schema_problems

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
    "lb": "elasticloadbalancing", "s3": "s3", "secretsmanager": "secretsmanager",
    **{kind: "ec2" for kind in ("default", "ebs", "eip", "flow", "instance", "internet", "launch", "nat", "route",
                                "security", "subnet", "volume", "vpc")},
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

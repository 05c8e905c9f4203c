"""The AWS bootstrap stack: state bucket and CI trust, created once by an admin.

Local state (the bucket it creates is where every later state lives). Resources:
- the Terraform state bucket: versioned, KMS-encrypted, public access blocked, TLS only,
  owner-enforced, never destroyed by Terraform (state locking uses S3 lock files);
- GitHub's OIDC identity provider and two roles trusted by this repository only:
  `-ci-plan` (pull requests and scheduled runs on main) and `-ci-apply` (jobs in the
  protected environment only, GitHub-hosted or on the self-hosted runner alike: the
  runner VM itself holds no CI role).

The plan role runs code from pull requests, so it reads configuration, never data:
AWS's ViewOnlyAccess (lists and describes, no object or secret reads) plus the
configuration reads that `terraform plan` of the platform stack needs, the platform's
state (read) and its lock files (write), and an explicit deny of every other S3 object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf import LocalBackend, TerraformStack

from modules.aws.base import output, ref, res
from modules.aws.spec import partition
from modules.base import pinned_provider
from modules.ci import GITHUB_OIDC_HOST, GITHUB_OIDC_ISSUER, STATE_PREFIX, CiTrust, role_name

PROVIDER_VERSION = "~> 5.100"
# GitHub's OIDC certificate chain thumbprints (AWS no longer checks them for this issuer,
# but older provider versions require the list).
GITHUB_THUMBPRINTS = ("6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd")
PLAN_MANAGED_POLICY = "job-function/ViewOnlyAccess"  # its path is part of its ARN
# What refreshing the platform stack reads beyond ViewOnlyAccess: configuration of the
# services it uses (modules/aws/*), never object contents, secrets or parameters.
PLAN_READ_ACTIONS = (
    "acm:DescribeCertificate",
    "acm:ListTagsForCertificate",
    "budgets:ListTagsForResource",
    "budgets:ViewBudget",
    "ec2:Describe*",
    "elasticloadbalancing:Describe*",
    "iam:GetInstanceProfile",
    "iam:GetOpenIDConnectProvider",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:List*",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListResourceTags",
    "logs:Describe*",
    "logs:ListTagsForResource",
    "logs:ListTagsLogGroup",
    "s3:GetAccelerateConfiguration",
    "s3:GetBucket*",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
    "s3:ListAllMyBuckets",
    # the hub's secrets' configuration (name, key, tags, policy), never their values
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
    "sts:GetCallerIdentity",
)


@dataclass(frozen=True)
class AwsBootstrapSpec:
    trust: CiTrust
    region: str
    account_id: str
    state_bucket: str

    @property
    def partition(self) -> str:
        return partition(self.region)


def build(stack: TerraformStack, spec: AwsBootstrapSpec) -> None:
    provider = pinned_provider(stack, "aws", PROVIDER_VERSION)
    # State beside the working directory (the state dir): the bucket does not exist yet.
    LocalBackend(stack, path="terraform.tfstate")
    provider.add_override("region", spec.region)
    provider.add_override("allowed_account_ids", [spec.account_id])
    provider.add_override(
        "default_tags", {"tags": {"platform": spec.trust.name, "managed-by": "graticule-bootstrap"}}
    )
    bucket_arn = _state_bucket(stack, spec)
    provider_arn = ref(
        res(stack, "aws_iam_openid_connect_provider", "github", {
            "url": GITHUB_OIDC_ISSUER,
            "client_id_list": ["sts.amazonaws.com"],
            "thumbprint_list": list(GITHUB_THUMBPRINTS),
        }),
        "arn",
    )
    _plan_role(stack, spec, provider_arn, bucket_arn)
    _apply_role(stack, spec, provider_arn)
    output("state_bucket", spec.state_bucket)


def _state_bucket(stack: TerraformStack, spec: AwsBootstrapSpec) -> str:
    bucket = res(stack, "aws_s3_bucket", "state", {
        "bucket": spec.state_bucket,
        "lifecycle": {"prevent_destroy": True},
    })
    name = ref(bucket, "id")
    res(stack, "aws_s3_bucket_versioning", "state", {
        "bucket": name,
        "versioning_configuration": {"status": "Enabled"},
    })
    res(stack, "aws_s3_bucket_server_side_encryption_configuration", "state", {
        "bucket": name,
        "rule": [{
            "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"},
            "bucket_key_enabled": True,
        }],
    })
    res(stack, "aws_s3_bucket_public_access_block", "state", {
        "bucket": name,
        "block_public_acls": True,
        "block_public_policy": True,
        "ignore_public_acls": True,
        "restrict_public_buckets": True,
    })
    res(stack, "aws_s3_bucket_ownership_controls", "state", {
        "bucket": name,
        "rule": {"object_ownership": "BucketOwnerEnforced"},
    })
    arn = ref(bucket, "arn")
    res(stack, "aws_s3_bucket_policy", "state", {
        "bucket": name,
        "policy": json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }],
        }, sort_keys=True),
    })
    return arn


def _github_trust(provider_arn: str, subjects: list[str]) -> dict:
    return {
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {
                f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                f"{GITHUB_OIDC_HOST}:sub": subjects,
            }
        },
    }


def _role(stack: TerraformStack, key: str, name: str, statements: list[dict], description: str):
    return res(stack, "aws_iam_role", key, {
        "name": name,
        "description": description,
        "max_session_duration": 3600,
        "assume_role_policy": json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True),
    })


def _plan_role(stack: TerraformStack, spec: AwsBootstrapSpec, provider_arn: str, bucket_arn: str) -> None:
    trust = spec.trust
    role = _role(
        stack, "ci_plan", role_name(trust.name, "plan"),
        [_github_trust(provider_arn, list(trust.plan_subjects))],
        f"graticule {trust.name}: read-only plans from {trust.repository} (pull requests, drift)",
    )
    res(stack, "aws_iam_role_policy_attachment", "ci_plan_view_only", {
        "role": ref(role, "name"),
        "policy_arn": f"arn:{spec.partition}:iam::aws:policy/{PLAN_MANAGED_POLICY}",
    })
    res(stack, "aws_iam_role_policy", "ci_plan_read", {
        "name": "plan-read",
        "role": ref(role, "id"),
        "policy": json.dumps(plan_read_policy(bucket_arn, trust.name), sort_keys=True),
    })
    # Planning takes the state lock: a lock file next to the state, nothing else writable.
    res(stack, "aws_iam_role_policy", "ci_plan_state_lock", {
        "name": "state-lock",
        "role": ref(role, "id"),
        "policy": json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{_state_objects(bucket_arn, trust.name)}*.tflock",
            }],
        }, sort_keys=True),
    })
    output("plan_role_arn", ref(role, "arn"))


def _state_objects(bucket_arn: str, name: str) -> str:
    """ARN prefix of this platform's objects in the state bucket (state and lock files)."""
    return f"{bucket_arn}/{STATE_PREFIX.format(name=name)}/"


def plan_read_policy(bucket_arn: str, name: str) -> dict:
    """What a plan may read: configuration everywhere, objects only of its own state."""
    state = _state_objects(bucket_arn, name)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadConfiguration", "Effect": "Allow", "Action": list(PLAN_READ_ACTIONS), "Resource": "*"},
            {"Sid": "ListStateBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
            {"Sid": "ReadState", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{state}*"},
            # Whatever else gets attached to this role later, no user's data is readable.
            {"Sid": "NoOtherObjects", "Effect": "Deny", "Action": "s3:GetObject*", "NotResource": f"{state}*"},
        ],
    }


def _apply_role(stack: TerraformStack, spec: AwsBootstrapSpec, provider_arn: str) -> None:
    trust = spec.trust
    # GitHub's OIDC only, also for the self-hosted runner: no VM holds this role at rest.
    role = _role(
        stack, "ci_apply", role_name(trust.name, "apply"), [_github_trust(provider_arn, [trust.apply_subject])],
        f"graticule {trust.name}: applies from {trust.repository} main, protected environment only",
    )
    res(stack, "aws_iam_role_policy_attachment", "ci_apply_admin", {
        "role": ref(role, "name"),
        "policy_arn": f"arn:{spec.partition}:iam::aws:policy/AdministratorAccess",
    })
    output("apply_role_arn", ref(role, "arn"))

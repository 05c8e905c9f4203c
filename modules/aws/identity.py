"""IAM: the hub's role (launch and stop only this platform's instances), one worker role
per distinct set of bucket grants (users with the same grants share it), instance profiles."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from constructs import Construct

from modules import naming
from modules.aws.base import data, name_tag, ref, res
from modules.aws.spec import AwsSpec, Grant, WorkerAccess

READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation")
MAX_KEY = 64 - 31 - len("-worker-")  # IAM role names: "<platform (<=31)>-worker-<key>" <= 64


def worker_access(grants_by_user: Mapping[str, Mapping[str, Grant]]) -> tuple[WorkerAccess, ...]:
    """Group users by their exact bucket grants: one worker identity per distinct set."""
    users_by_set: dict[tuple[Grant, ...], list[str]] = {}
    for user, grants in grants_by_user.items():
        users_by_set.setdefault(tuple(sorted(grants.values())), []).append(user)
    return tuple(
        WorkerAccess(key=_key(grants), grants=grants, users=tuple(users))
        for grants, users in sorted(users_by_set.items(), key=lambda item: _key(item[0]))
    )


def _key(grants: tuple[Grant, ...]) -> str:
    if not grants:
        return "none"
    readable = "-".join(f"{g.storage}-{'rw' if g.access == 'read-write' else 'ro'}" for g in grants)
    if len(readable) <= MAX_KEY:
        return readable
    return "set-" + hashlib.sha256(readable.encode()).hexdigest()[:12]


def _ec2_trust(scope: Construct, name: str):
    return data(scope, "aws_iam_policy_document", name, {
        "statement": [{
            "actions": ["sts:AssumeRole"],
            "principals": [{"type": "Service", "identifiers": ["ec2.amazonaws.com"]}],
        }],
    })


class Identity(Construct):
    def __init__(self, scope: Construct, spec: AwsSpec, *, log_group_arn: str, key_arn: str) -> None:
        super().__init__(scope, "identity")
        self._spec = spec
        trust = _ec2_trust(self, "ec2_trust")
        self.worker_roles = {}
        self.worker_profiles = {}
        for access in spec.worker_access:
            role = res(self, "aws_iam_role", f"worker_{access.key}", {
                "name": f"{spec.name}-worker-{access.key}",
                "description": f"graticule {spec.name}: workers of {len(access.users)} user(s)",
                "assume_role_policy": ref(trust, "json"),
                "tags": name_tag(f"{spec.name}-worker-{access.key}"),
            })
            res(self, "aws_iam_role_policy", f"worker_{access.key}", {
                "name": "platform-access",
                "role": ref(role, "id"),
                "policy": ref(self._worker_policy(access, log_group_arn, key_arn), "json"),
            })
            self.worker_roles[access.key] = role
            self.worker_profiles[access.key] = res(self, "aws_iam_instance_profile", f"worker_{access.key}", {
                "name": f"{spec.name}-worker-{access.key}",
                "role": ref(role, "name"),
                "tags": name_tag(f"{spec.name}-worker-{access.key}"),
            })

        self.hub_role = res(self, "aws_iam_role", "hub", {
            "name": f"{spec.name}-hub",
            "description": f"graticule {spec.name}: the hub VM (JupyterHub, dask-gateway)",
            "assume_role_policy": ref(trust, "json"),
            "tags": name_tag(f"{spec.name}-hub"),
        })
        # Session Manager instead of SSH: no key pairs, no port 22.
        res(self, "aws_iam_role_policy_attachment", "hub_ssm", {
            "role": ref(self.hub_role, "name"),
            "policy_arn": f"arn:{spec.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
        })
        self.hub_profile = res(self, "aws_iam_instance_profile", "hub", {
            "name": f"{spec.name}-hub",
            "role": ref(self.hub_role, "name"),
            "tags": name_tag(f"{spec.name}-hub"),
        })

    def _worker_policy(self, access: WorkerAccess, log_group_arn: str, key_arn: str):
        spec = self._spec
        statements: list[dict[str, object]] = [{
            "sid": "WriteLogs",
            "actions": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "resources": [f"{log_group_arn}:*"],
        }]
        for grant in access.grants:
            bucket = f"arn:{spec.partition}:s3:::{grant.bucket}"
            writes = WRITE_ACTIONS if grant.access == "read-write" else ()
            sid = "".join(part.capitalize() for part in grant.storage.replace("_", "-").split("-"))
            statements += [
                {"sid": f"List{sid}", "actions": list(BUCKET_ACTIONS), "resources": [bucket]},
                {"sid": f"Objects{sid}", "actions": [*READ_ACTIONS, *writes], "resources": [f"{bucket}/*"]},
            ]
        if access.grants:
            # Buckets the platform creates are encrypted with its key, used only through S3.
            statements.append({
                "sid": "UsePlatformKeyThroughS3",
                "actions": ["kms:Decrypt", "kms:GenerateDataKey"],
                "resources": [key_arn],
                "condition": [{"test": "StringEquals", "variable": "kms:ViaService",
                               "values": [f"s3.{spec.region}.amazonaws.com"]}],
            })
        return data(self, "aws_iam_policy_document", f"worker_{access.key}", {"statement": statements})

    def grant_hub(self, *, launch_template_arns: list[str], private_subnet_arns: list[str],
                  worker_security_group_arn: str, log_group_arn: str, artifacts_bucket_arn: str = "",
                  key_arn: str = "", notebook_security_group_arn: str = "") -> None:
        """The hub may launch instances only from this platform's templates, into its private
        subnets and security groups, tagged for this platform and one of its budgets, without
        a public IP; it may stop and terminate only instances tagged for this platform; it
        may create users' home volumes tagged for this platform (`role = home`) and attach
        only those, only to this platform's notebook instances."""
        spec = self._spec
        arn = f"arn:{spec.partition}:ec2:{spec.region}:{spec.account_id}"
        secrets_arn = f"arn:{spec.partition}:secretsmanager:{spec.region}:{spec.account_id}"
        from_templates = {"test": "ArnLike", "variable": "ec2:LaunchTemplate", "values": launch_template_arns}
        statements: list[dict[str, object]] = [
            {
                "sid": "LaunchFromPlatformTemplates",
                "actions": ["ec2:RunInstances"],
                "resources": [
                    *launch_template_arns, *private_subnet_arns, worker_security_group_arn,
                    *([notebook_security_group_arn] if notebook_security_group_arn else []),
                    f"{arn}:instance/*", f"{arn}:volume/*", f"{arn}:network-interface/*",
                    f"{arn}:spot-instances-request/*", f"arn:{spec.partition}:ec2:{spec.region}::image/*",
                ],
                "condition": [from_templates],
            },
            {
                "sid": "NoPublicAddresses",
                "effect": "Deny",
                "actions": ["ec2:RunInstances"],
                "resources": [f"{arn}:network-interface/*"],
                "condition": [{"test": "Bool", "variable": "ec2:AssociatePublicIpAddress", "values": ["true"]}],
            },
            {
                "sid": "TagLaunchesForThisPlatform",
                "effect": "Deny",
                "actions": ["ec2:RunInstances"],
                "resources": [f"{arn}:instance/*"],
                "condition": [{"test": "StringNotEquals", "variable": "aws:RequestTag/platform",
                               "values": [spec.name]}],
            },
            {
                "sid": "TagOnlyAtLaunch",
                "actions": ["ec2:CreateTags"],
                "resources": [f"{arn}:instance/*", f"{arn}:volume/*", f"{arn}:network-interface/*",
                              f"{arn}:spot-instances-request/*"],
                "condition": [{"test": "StringEquals", "variable": "ec2:CreateAction", "values": ["RunInstances"]}],
            },
            {
                "sid": "StopOnlyThisPlatform",
                "actions": ["ec2:TerminateInstances", "ec2:StopInstances"],
                "resources": [f"{arn}:instance/*"],
                "condition": [{"test": "StringEquals", "variable": "aws:ResourceTag/platform", "values": [spec.name]}],
            },
            *_home_volume_statements(arn, spec.name),
            {
                # Describe calls support no resource-level permissions.
                "sid": "Describe",
                "actions": ["ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeLaunchTemplates",
                            "ec2:DescribeLaunchTemplateVersions", "ec2:DescribeSpotInstanceRequests",
                            "ec2:DescribeInstanceTypes", "ec2:DescribeSubnets", "ec2:DescribeVolumes"],
                "resources": ["*"],
            },
            {
                "sid": "PassWorkerRoles",
                "actions": ["iam:PassRole"],
                "resources": [ref(role, "arn") for role in self.worker_roles.values()],
                "condition": [{"test": "StringEquals", "variable": "iam:PassedToService",
                               "values": ["ec2.amazonaws.com"]}],
            },
            {
                "sid": "WriteLogs",
                "actions": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "resources": [f"{log_group_arn}:*"],
            },
            {
                # The hub's secrets live in Secrets Manager (see modules.aws.hub_state): it reads
                # them all, the operator's included.
                "sid": "ReadPlatformSecrets",
                "actions": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "resources": [f"{secrets_arn}:secret:graticule/{spec.name}/*"],
            },
            {
                # It puts values only on the ones it generates on first boot; the operator's
                # (OAuth client secret, database URL) are never the hub's to change. `-??????`:
                # the random suffix Secrets Manager gives every secret's ARN.
                "sid": "PutGeneratedSecrets",
                "actions": ["secretsmanager:PutSecretValue"],
                "resources": [f"{secrets_arn}:secret:{naming.secret_name(spec.name, key)}-??????"
                              for key in naming.SECRET_KEYS_GENERATED],
            },
        ]
        machine_secrets = (f"arn:{spec.partition}:secretsmanager:{spec.region}:{spec.account_id}"
                           f":secret:{naming.machine_secret_name(spec.name, '*')}")
        statements.append({
            # One secret per launched cluster or server (deploy.cloud.machine_secrets): the hub
            # makes it, narrows who may read it to the machines it launched, and deletes it.
            "sid": "ManageMachineSecrets",
            "actions": ["secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:DeleteSecret",
                        "secretsmanager:PutResourcePolicy", "secretsmanager:GetResourcePolicy",
                        "secretsmanager:TagResource", "secretsmanager:DescribeSecret"],
            "resources": [machine_secrets],
        })
        if artifacts_bucket_arn:
            self._grant_machine_boot(artifacts_bucket_arn, machine_secrets, key_arn)
            statements += [
                {"sid": "ListArtifacts", "actions": ["s3:ListBucket"], "resources": [artifacts_bucket_arn]},
                {"sid": "ReadArtifacts", "actions": ["s3:GetObject"], "resources": [f"{artifacts_bucket_arn}/*"]},
                {
                    # The gateway publishes synced environments' wheels for the machines
                    # (deploy.vm.synced_for_machines): it writes there and nowhere else.
                    "sid": "PublishSyncedEnvironments",
                    "actions": ["s3:PutObject"],
                    "resources": [f"{artifacts_bucket_arn}/{naming.environment_prefix('*')}"],
                },
                {
                    # Its bucket and secrets are encrypted with the platform's key, used only through them.
                    "sid": "UsePlatformKeyThroughS3AndSecrets",
                    "actions": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "resources": [key_arn],
                    "condition": [{"test": "StringEquals", "variable": "kms:ViaService",
                                   "values": [f"s3.{spec.region}.amazonaws.com",
                                              f"secretsmanager.{spec.region}.amazonaws.com"]}],
                },
            ]
        if spec.budgets:
            statements.insert(3, {
                "sid": "TagLaunchesWithABudget",
                "effect": "Deny",
                "actions": ["ec2:RunInstances"],
                "resources": [f"{arn}:instance/*"],
                "condition": [{"test": "StringNotEquals", "variable": "aws:RequestTag/budget",
                               "values": [b.name for b in spec.budgets]}],
            })
        if not self.worker_roles:
            statements = [s for s in statements if s["sid"] != "PassWorkerRoles"]
        policy = data(self, "aws_iam_policy_document", "hub", {"statement": statements})
        res(self, "aws_iam_role_policy", "hub", {
            "name": "launch-platform-instances",
            "role": ref(self.hub_role, "id"),
            "policy": ref(policy, "json"),
        })

    def _grant_machine_boot(self, artifacts_bucket_arn: str, machine_secrets: str, key_arn: str) -> None:
        """What a launched machine reads at boot (deploy.cloud.machine_boot): the wheels and the
        configuration's pointer in the artifacts bucket, and the machines' secrets, of which
        each secret's resource policy lets it read only its own."""
        spec = self._spec
        objects = [f"{artifacts_bucket_arn}/{prefix}" for prefix in ("environments/*", "wheelhouse/*",
                                                                     "config/current.json")]
        for key, role in self.worker_roles.items():
            policy = data(self, "aws_iam_policy_document", f"worker_boot_{key}", {"statement": [
                {"sid": "ReadWheels", "actions": ["s3:GetObject"], "resources": objects},
                {"sid": "ReadMachineSecrets", "actions": ["secretsmanager:GetSecretValue"],
                 "resources": [machine_secrets]},
                {"sid": "UsePlatformKeyThroughS3AndSecrets", "actions": ["kms:Decrypt"], "resources": [key_arn],
                 "condition": [{"test": "StringEquals", "variable": "kms:ViaService",
                                "values": [f"s3.{spec.region}.amazonaws.com",
                                           f"secretsmanager.{spec.region}.amazonaws.com"]}]},
            ]})
            res(self, "aws_iam_role_policy", f"worker_boot_{key}", {
                "name": "machine-boot",
                "role": ref(role, "id"),
                "policy": ref(policy, "json"),
            })

def _home_volume_statements(arn: str, platform: str) -> list[dict[str, object]]:
    """Users' home volumes (deploy.cloud.home_volumes): made by the hub, tagged at creation,
    attached only to the platform's notebook instances. Detaching is EC2's, at termination."""
    def tagged(kind: str, **tags: str) -> list[dict[str, object]]:
        return [{"test": "StringEquals", "variable": f"aws:{kind}/{key}", "values": [value]}
                for key, value in tags.items()]

    return [
        {
            "sid": "CreateHomeVolumes",
            "actions": ["ec2:CreateVolume"],
            "resources": [f"{arn}:volume/*"],
            "condition": tagged("RequestTag", platform=platform, role="home"),
        },
        {
            "sid": "TagHomeVolumesAtCreation",
            "actions": ["ec2:CreateTags"],
            "resources": [f"{arn}:volume/*"],
            "condition": [{"test": "StringEquals", "variable": "ec2:CreateAction", "values": ["CreateVolume"]}],
        },
        {
            "sid": "AttachHomeVolumes",
            "actions": ["ec2:AttachVolume"],
            "resources": [f"{arn}:volume/*"],
            "condition": tagged("ResourceTag", platform=platform, role="home"),
        },
        {
            "sid": "AttachToNotebookInstances",
            "actions": ["ec2:AttachVolume"],
            "resources": [f"{arn}:instance/*"],
            "condition": tagged("ResourceTag", platform=platform, role="notebook"),
        },
    ]

"""The platform's KMS key: encrypts its log groups and the buckets it creates."""

from __future__ import annotations

import json

from constructs import Construct

from modules.aws.base import name_tag, ref, res
from modules.aws.spec import AwsSpec


class Encryption(Construct):
    def __init__(self, scope: Construct, spec: AwsSpec) -> None:
        super().__init__(scope, "encryption")
        account = f"arn:{spec.partition}:iam::{spec.account_id}:root"
        logs_arn = f"arn:{spec.partition}:logs:{spec.region}:{spec.account_id}:log-group:*"
        # A key policy (a resource policy: "*" means this key) rather than a policy
        # document data source, which IAM identity-policy checks would misread.
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    # The account administers the key; IAM policies then grant its use.
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": account},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchLogsEncrypts",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{spec.region}.amazonaws.com"},
                    "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                               "kms:Describe*"],
                    "Resource": "*",
                    "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": logs_arn}},
                },
            ],
        }
        self.key = res(self, "aws_kms_key", "main", {
            "description": f"graticule platform {spec.name}: logs and buckets",
            "enable_key_rotation": True,
            "deletion_window_in_days": 30,
            "policy": json.dumps(policy, sort_keys=True),
            "tags": name_tag(spec.name),
        })
        res(self, "aws_kms_alias", "main", {
            "name": f"alias/graticule-{spec.name}",
            "target_key_id": ref(self.key, "key_id"),
        })
        self.key_arn = ref(self.key, "arn")

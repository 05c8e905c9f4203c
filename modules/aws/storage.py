"""S3 buckets for storage integrations the platform creates (`existing: true` ones are only
granted to workers, never managed): KMS-encrypted, versioned, private, TLS only."""

from __future__ import annotations

from constructs import Construct

from modules.aws.base import data, ident, name_tag, ref, res
from modules.aws.spec import AwsSpec, BucketSpec


class Storage(Construct):
    def __init__(self, scope: Construct, spec: AwsSpec, key_arn: str) -> None:
        super().__init__(scope, "storage")
        self.buckets = {
            bucket.name: self._bucket(spec, bucket, key_arn) for bucket in spec.buckets if not bucket.existing
        }

    def _bucket(self, spec: AwsSpec, bucket: BucketSpec, key_arn: str):
        return private_bucket(self, f"storage_{ident(bucket.name)}", bucket.bucket, key_arn,
                              name_tag(bucket.bucket, storage=bucket.name))


def private_bucket(scope: Construct, name: str, bucket_name: str, key_arn: str, tags: dict[str, str], *,
                   force_destroy: bool = False):
    """A private bucket: KMS-encrypted with the platform's key, versioned, TLS only, no ACLs.
    `force_destroy`: `platform destroy` empties it first (for what the platform itself writes)."""
    node = res(scope, "aws_s3_bucket", name, {
        "bucket": bucket_name,
        **({"force_destroy": True} if force_destroy else {}),
        "tags": tags,
    })
    bucket_id = ref(node, "id")
    res(scope, "aws_s3_bucket_public_access_block", name, {
        "bucket": bucket_id,
        "block_public_acls": True,
        "block_public_policy": True,
        "ignore_public_acls": True,
        "restrict_public_buckets": True,
    })
    res(scope, "aws_s3_bucket_ownership_controls", name, {
        "bucket": bucket_id,
        "rule": {"object_ownership": "BucketOwnerEnforced"},  # no ACLs at all
    })
    res(scope, "aws_s3_bucket_versioning", name, {
        "bucket": bucket_id,
        "versioning_configuration": {"status": "Enabled"},
    })
    res(scope, "aws_s3_bucket_server_side_encryption_configuration", name, {
        "bucket": bucket_id,
        "rule": [{
            "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key_arn},
            "bucket_key_enabled": True,  # fewer KMS calls, lower cost
        }],
    })
    res(scope, "aws_s3_bucket_lifecycle_configuration", name, {
        "bucket": bucket_id,
        "rule": [{
            "id": "abort-incomplete-uploads",
            "status": "Enabled",
            "filter": {},
            "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
        }],
    })
    tls_only = data(scope, "aws_iam_policy_document", name, {
        "statement": [{
            "sid": "DenyInsecureTransport",
            "effect": "Deny",
            "actions": ["s3:*"],
            "resources": [ref(node, "arn"), f"{ref(node, 'arn')}/*"],
            "principals": [{"type": "*", "identifiers": ["*"]}],
            "condition": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}],
        }],
    })
    res(scope, "aws_s3_bucket_policy", name, {"bucket": bucket_id, "policy": ref(tls_only, "json")})
    return node

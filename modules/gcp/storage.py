"""GCS buckets for storage integrations, and which worker accounts may use them.

Buckets the platform creates are private by construction: uniform bucket-level access
(IAM only, no ACLs), public access prevention enforced, encrypted with the platform's
key, versioned, and kept on
`terraform destroy` unless emptied first. Existing buckets are not managed, only granted
to. Read is objectViewer; read-write is objectUser (objects only, never bucket IAM).
"""

from __future__ import annotations

from collections.abc import Mapping

from constructs import Construct

from modules.gcp.base import ident, ref, res
from modules.gcp.spec import GcpSpec

ROLES = {"read": "roles/storage.objectViewer", "read-write": "roles/storage.objectUser"}
NONCURRENT_VERSIONS_KEPT_DAYS = 30


class Storage(Construct):
    def __init__(self, scope: Construct, spec: GcpSpec, workers: Mapping[str, str], *, key_id: str,
                 key_grant: str) -> None:
        super().__init__(scope, "storage")
        # bucket name -> the value to grant on: a reference when we create it (so the
        # grant waits for the bucket), the plain name when it exists already.
        buckets: dict[str, str] = {}
        self.buckets: dict[str, str] = {}  # integration name -> bucket name
        for store in spec.buckets:
            if store.existing:
                buckets[store.bucket] = self.buckets[store.name] = store.bucket
                continue
            bucket = res(self, "google_storage_bucket", ident(store.name), {
                "name": store.bucket,
                "location": spec.region.upper(),
                "storage_class": "STANDARD",
                "uniform_bucket_level_access": True,
                "public_access_prevention": "enforced",
                "versioning": {"enabled": True},
                "encryption": {"default_kms_key_name": key_id},
                "force_destroy": False,
                "labels": {"storage": store.name},
                # Versioning keeps overwritten data; expire old versions so it cannot grow forever.
                "lifecycle_rule": [{
                    "action": {"type": "Delete"},
                    "condition": {"days_since_noncurrent_time": NONCURRENT_VERSIONS_KEPT_DAYS},
                }],
                "depends_on": [key_grant],
            })
            buckets[store.bucket] = self.buckets[store.name] = ref(bucket, "name")
        for access in spec.worker_access:
            for grant in access.grants:
                res(self, "google_storage_bucket_iam_member", f"{ident(grant.storage)}_{ident(access.key)}", {
                    "bucket": buckets[grant.bucket],
                    "role": ROLES[grant.access],
                    "member": f"serviceAccount:{workers[access.key]}",
                })

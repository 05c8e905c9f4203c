"""The platform's Cloud KMS key: encrypts VM disks (hub and workers) and the buckets it
creates. Rotated every 90 days; Google's service agents for Compute Engine and Cloud
Storage may use it, nobody else is granted anything on it here."""

from __future__ import annotations

from constructs import Construct

from modules.gcp.base import data, ref, res
from modules.gcp.spec import GcpSpec

ROTATION = f"{90 * 24 * 3600}s"
ENCRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"


class Encryption(Construct):
    def __init__(self, scope: Construct, spec: GcpSpec, project_number: str) -> None:
        super().__init__(scope, "encryption")
        ring = res(self, "google_kms_key_ring", "main", {
            "name": f"graticule-{spec.name}",
            "location": spec.region,
        })
        self.key = res(self, "google_kms_crypto_key", "main", {
            "name": f"{spec.name}-platform",
            "key_ring": ref(ring, "id"),
            "purpose": "ENCRYPT_DECRYPT",
            "rotation_period": ROTATION,
            # Destroying a key makes everything it encrypted unreadable: never by accident.
            "lifecycle": {"prevent_destroy": True},
        })
        self.key_id = ref(self.key, "id")
        # Cloud Storage's agent is created on first use: the data source makes sure it exists.
        storage_agent = data(self, "google_storage_project_service_account", "this", {})
        agents = {
            "compute": f"serviceAccount:service-{project_number}@compute-system.iam.gserviceaccount.com",
            "storage": f"serviceAccount:{ref(storage_agent, 'email_address')}",
        }
        # Resources encrypted with the key wait for these grants (`depends_on`).
        self.grants = {}
        for agent, member in agents.items():
            res(self, "google_kms_crypto_key_iam_member", f"{agent}_agent", {
                "crypto_key_id": self.key_id,
                "role": ENCRYPTER,
                "member": member,
            })
            self.grants[agent] = f"google_kms_crypto_key_iam_member.{agent}_agent"

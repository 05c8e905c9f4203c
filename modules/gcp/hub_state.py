"""What the GCP hub VM keeps outside itself: its artifacts bucket, its state disk, its secrets.

- The artifacts bucket (`naming.gcp_artifacts_bucket`): `platform apply` publishes the
  wheelhouse and the rendered configuration there; the hub's account may read it and create
  objects under `environments/` only (the gateway publishes synced environments there:
  deploy.vm.synced_for_machines), never overwrite or delete one; the machines' accounts read
  only the wheels they install (`environments/`, `wheelhouse/`).
  Emptied and removed by `platform destroy` (force_destroy): all of it can be published again.
- The state disk: a pd-balanced disk in the hub's zone, encrypted with the platform's key,
  attached as `graticule-state` and mounted at /var/lib/graticule (hub database, gateway
  database, usage ledger). A separate resource from the instance, so replacing the hub
  keeps it. Labelled `mount-point` with the path's `/` as `_` (label values allow no `/`):
  the simulator mounts it there.
- The secrets (`naming.gcp_secret_id`): Secret Manager secrets WITHOUT versions, so no
  secret is ever in Terraform's state. The hub adds a version to the five it owns on first
  boot (only when a secret has none); the operator adds the OAuth client secret's and,
  to keep the databases on PostgreSQL rather than the disk, the database URL's (always
  created, so setting it needs no apply; read at the hub's next boot). The hub's account
  may read each, and add versions only to the five it owns.
"""

from __future__ import annotations

from collections.abc import Mapping

from constructs import Construct

from modules import naming
from modules.gcp.base import ident, ref, res
from modules.gcp.spec import GcpSpec

STATE_DISK_GB = 20
STATE_ROLE_LABEL = {"role": "hub-state"}
OPERATOR_KEYS = (naming.OAUTH_CLIENT_SECRET_KEY, naming.DATABASE_URL_KEY)
READ_SECRET = "roles/secretmanager.secretAccessor"
ADD_SECRET_VERSION = "roles/secretmanager.secretVersionAdder"
READ_OBJECTS = "roles/storage.objectViewer"
CREATE_OBJECTS = "roles/storage.objectCreator"  # create only: replacing an object needs delete too
MACHINE_PREFIXES = ("environments", "wheelhouse")  # what launched machines install from the bucket
CURRENT = "config/current.json"  # names the wheelhouse published last


def secret_keys(spec: GcpSpec) -> list[str]:
    keys = list(naming.SECRET_KEYS_GENERATED)
    if spec.oauth_client_secret:
        keys.append(naming.OAUTH_CLIENT_SECRET_KEY)
    keys.append(naming.DATABASE_URL_KEY)
    return keys


class HubState(Construct):
    def __init__(self, scope: Construct, spec: GcpSpec, *, zone: str, hub_member: str, key_id: str,
                 key_grants: dict[str, str], machine_members: Mapping[str, str] | None = None) -> None:
        super().__init__(scope, "hub_state")
        self.artifacts = res(self, "google_storage_bucket", "artifacts", {
            "name": naming.gcp_artifacts_bucket(spec.name, spec.project),
            "location": spec.region.upper(),
            "storage_class": "STANDARD",
            "uniform_bucket_level_access": True,
            "public_access_prevention": "enforced",
            "versioning": {"enabled": True},
            "encryption": {"default_kms_key_name": key_id},
            "force_destroy": True,
            "labels": {"purpose": "hub-artifacts"},
            "depends_on": [key_grants["storage"]],
        })
        res(self, "google_storage_bucket_iam_member", "artifacts_hub", {
            "bucket": ref(self.artifacts, "name"),
            "role": READ_OBJECTS,
            "member": hub_member,
        })
        bucket_name = naming.gcp_artifacts_bucket(spec.name, spec.project)
        objects = f"projects/_/buckets/{bucket_name}/objects/"
        res(self, "google_storage_bucket_iam_member", "artifacts_hub_environments", {
            "bucket": ref(self.artifacts, "name"),
            "role": CREATE_OBJECTS,
            "member": hub_member,
            "condition": {"title": "environments-only", "description": "synced environments the gateway publishes",
                          "expression": f'resource.name.startsWith("{objects}{naming.environment_prefix("")}")'},
        })
        wheels = " || ".join([f'resource.name.startsWith("{objects}{prefix}/")' for prefix in MACHINE_PREFIXES]
                             + [f'resource.name == "{objects}{CURRENT}"'])
        for key, member in sorted((machine_members or {}).items()):
            res(self, "google_storage_bucket_iam_member", f"artifacts_machines_{ident(key)}", {
                "bucket": ref(self.artifacts, "name"),
                "role": READ_OBJECTS,
                "member": member,
                "condition": {"title": "wheels-only", "description": "the wheels machines install",
                              "expression": wheels},
            })
        self.disk = res(self, "google_compute_disk", "hub_state", {
            "name": f"{spec.name}-hub-state",
            "description": f"graticule {spec.name}: hub, gateway and ledger databases",
            "zone": zone,
            "type": "pd-balanced",
            "size": STATE_DISK_GB,
            "disk_encryption_key": {"kms_key_self_link": key_id},
            "labels": {**STATE_ROLE_LABEL, "mount-point": naming.gcp_label_value(naming.HUB_STATE_DIR)},
            "depends_on": [key_grants["compute"]],
        })
        self.secrets = {}
        for key in secret_keys(spec):
            owner = "the operator" if key in OPERATOR_KEYS else "the hub on first boot"
            secret = res(self, "google_secret_manager_secret", ident(key.replace("-", "_")), {
                "secret_id": naming.gcp_secret_id(spec.name, key),
                "replication": {"auto": {}},
                "labels": {"secret": key},
                "annotations": {"graticule": f"{spec.name}: {key} (set by {owner})"},
            })
            self.secrets[key] = secret
            roles = [READ_SECRET] if key in OPERATOR_KEYS else [READ_SECRET, ADD_SECRET_VERSION]
            for role in roles:
                res(self, "google_secret_manager_secret_iam_member",
                    f"hub_{ident(key.replace('-', '_'))}_{role.split('.')[-1].lower()}", {
                        "secret_id": ref(secret, "id"),
                        "role": role,
                        "member": hub_member,
                    })

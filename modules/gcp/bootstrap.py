"""The GCP bootstrap stack: state bucket and CI trust, created once by an admin.

Local state (the bucket it creates is where every later state lives). Resources:
- the Terraform state bucket: versioned, uniform access, public access prevented
  (GCS locks state natively, and encrypts at rest), never destroyed by Terraform;
- a workload identity pool with GitHub's OIDC provider, accepting tokens of this
  repository only, and two service accounts: `-ci-plan` (viewer; pull requests and
  scheduled runs on main; reads the state, writes only its lock files) and `-ci-apply`
  (jobs in the protected environment only).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import LocalBackend, TerraformStack

from modules.base import pinned_provider
from modules.ci import GITHUB_OIDC_ISSUER, STATE_PREFIX, CiTrust, service_account_id, workload_identity_pool_id
from modules.gcp.base import output, ref, res

PROVIDER_VERSION = "~> 6.50"
PLAN_ROLES = ("roles/viewer", "roles/iam.securityReviewer")
APPLY_ROLES = ("roles/editor", "roles/resourcemanager.projectIamAdmin", "roles/iam.serviceAccountAdmin")


@dataclass(frozen=True)
class GcpBootstrapSpec:
    trust: CiTrust
    project: str
    region: str
    state_bucket: str


def build(stack: TerraformStack, spec: GcpBootstrapSpec) -> None:
    provider = pinned_provider(stack, "google", PROVIDER_VERSION)
    # State beside the working directory (the state dir): the bucket does not exist yet.
    LocalBackend(stack, path="terraform.tfstate")
    provider.add_override("project", spec.project)
    provider.add_override("region", spec.region)
    trust = spec.trust
    for service in ("iam.googleapis.com", "iamcredentials.googleapis.com", "sts.googleapis.com"):
        res(stack, "google_project_service", service.split(".")[0], {
            "service": service,
            "disable_on_destroy": False,
        })
    bucket = res(stack, "google_storage_bucket", "state", {
        "name": spec.state_bucket,
        "location": spec.region.upper(),
        "uniform_bucket_level_access": True,
        "public_access_prevention": "enforced",
        "versioning": {"enabled": True},
        "force_destroy": False,
        "labels": {"platform": trust.name, "managed-by": "graticule-bootstrap"},
        "lifecycle": {"prevent_destroy": True},
    })
    pool = res(stack, "google_iam_workload_identity_pool", "github", {
        "workload_identity_pool_id": workload_identity_pool_id(trust.name),
        "display_name": f"GitHub Actions: {trust.name}"[:32],
        "description": f"CI of {trust.repository}",
        "depends_on": ["google_project_service.iam", "google_project_service.sts"],
    })
    provider_node = res(stack, "google_iam_workload_identity_pool_provider", "github_actions", {
        "workload_identity_pool_id": ref(pool, "workload_identity_pool_id"),
        "workload_identity_pool_provider_id": "github",
        "display_name": "GitHub Actions",
        "attribute_mapping": {
            "google.subject": "assertion.sub",
            "attribute.repository": "assertion.repository",
            "attribute.ref": "assertion.ref",
            "attribute.event_name": "assertion.event_name",
        },
        # Tokens from any other repository are refused before any binding is looked at.
        "attribute_condition": f"assertion.repository == '{trust.repository}'",
        "oidc": {"issuer_uri": GITHUB_OIDC_ISSUER},
    })
    principal = f"principal://iam.googleapis.com/{ref(pool, 'name')}/subject/"
    plan = _service_account(stack, spec, "plan", [principal + s for s in trust.plan_subjects], PLAN_ROLES)
    apply = _service_account(stack, spec, "apply", [principal + trust.apply_subject], APPLY_ROLES)
    # Plans read the state and take its lock (an object beside it), and nothing more: pull
    # requests must not be able to overwrite or delete the state. Applies write the state.
    res(stack, "google_storage_bucket_iam_member", "ci_plan_state", {
        "bucket": ref(bucket, "name"),
        "role": "roles/storage.objectViewer",
        "member": f"serviceAccount:{ref(plan, 'email')}",
    })
    res(stack, "google_storage_bucket_iam_member", "ci_plan_state_lock", {
        "bucket": ref(bucket, "name"),
        "role": "roles/storage.objectUser",
        "member": f"serviceAccount:{ref(plan, 'email')}",
        "condition": {
            "title": "state lock files only",
            "description": "create and delete the Terraform lock files of this platform's state, nothing else",
            "expression": lock_files_only(spec.state_bucket, trust.name),
        },
    })
    res(stack, "google_storage_bucket_iam_member", "ci_apply_state", {
        "bucket": ref(bucket, "name"),
        "role": "roles/storage.objectAdmin",
        "member": f"serviceAccount:{ref(apply, 'email')}",
    })
    for key, value in {
        "state_bucket": ref(bucket, "name"),
        "workload_identity_provider": ref(provider_node, "name"),
        "plan_service_account": ref(plan, "email"),
        "apply_service_account": ref(apply, "email"),
    }.items():
        output(key, value)


def lock_files_only(bucket: str, name: str) -> str:
    """IAM condition (CEL) matching only the `.tflock` objects beside the platform's state
    (the GCS backend's lock is `<STATE_PREFIX>/<workspace>.tflock`)."""
    objects = f"projects/_/buckets/{bucket}/objects/{STATE_PREFIX.format(name=name)}/"
    return f"resource.name.startsWith('{objects}') && resource.name.endsWith('.tflock')"


def _service_account(stack: TerraformStack, spec: GcpBootstrapSpec, role: str, members: list[str], roles):
    key = f"ci_{role}"
    account = res(stack, "google_service_account", key, {
        "account_id": service_account_id(spec.trust.name, role),
        "display_name": f"graticule {spec.trust.name} CI {role}",
    })
    for index, member in enumerate(members):
        res(stack, "google_service_account_iam_member", f"{key}_workload_identity_{index}", {
            "service_account_id": ref(account, "name"),
            "role": "roles/iam.workloadIdentityUser",
            "member": member,
        })
    for project_role in roles:
        res(stack, "google_project_iam_member", f"{key}_{project_role.split('/')[-1].replace('.', '_')}", {
            "project": spec.project,
            "role": project_role,
            "member": f"serviceAccount:{ref(account, 'email')}",
        })
    return account

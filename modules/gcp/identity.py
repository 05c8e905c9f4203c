"""Service accounts and least-privilege bindings.

The hub's account may create, change and delete instances, but only instances named for
this platform (never the hub itself), and only from this platform's instance templates
and subnetwork; it may attach the worker accounts and nothing else. There is one worker
account per distinct set of bucket grants (`WorkerAccess`), so a user's workers reach only
the buckets their groups were granted; the buckets' bindings live in `storage`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from constructs import Construct

from modules import naming
from modules.gcp.base import ACCOUNT_ID_MAX, account_id, hub_name, ident, ref, res
from modules.gcp.spec import GcpSpec, Grant, WorkerAccess

NO_GRANTS = "none"  # the key of the account that reaches no bucket: the templates' default

# Needed on the resources the hub launches; granted under a condition naming them.
LAUNCH_PERMISSIONS = (
    "compute.disks.create",
    "compute.disks.setLabels",
    "compute.disks.use",  # a user's home disk, attached to their notebook server's instance
    "compute.instanceTemplates.useReadOnly",
    "compute.instances.create",
    "compute.instances.delete",
    "compute.instances.setLabels",
    "compute.instances.setMetadata",
    "compute.instances.setServiceAccount",
    "compute.instances.setTags",
    "compute.subnetworks.use",
)
# Read-only, and list calls are checked against the project, so no name condition fits.
READ_PERMISSIONS = (
    "compute.disks.get",
    "compute.disks.list",
    "compute.instanceTemplates.get",
    "compute.instanceTemplates.list",
    "compute.instances.get",
    "compute.instances.list",
    "compute.regionOperations.get",
    "compute.zoneOperations.get",
    "compute.zones.list",
)
# The launched machines' secrets (deploy.cloud.gcp_machine_secrets): the hub alone reads them,
# adds their values and deletes them, under a condition naming their ids; the machines'
# accounts get no Secret Manager role at all (the hub's broker hands each machine its own).
# No update: the broker trusts a secret's labels, so they are set at creation only (a secret
# put again with other labels is deleted and created again), and nothing is annotated.
MACHINE_SECRET_PERMISSIONS = (
    "secretmanager.secrets.delete",
    "secretmanager.secrets.get",
    "secretmanager.versions.access",
    "secretmanager.versions.add",
)
# Checked against the project (the parent), so no name condition fits; creating grants no read.
MACHINE_SECRET_CREATE = ("secretmanager.secrets.create",)
# What every VM of the platform may do in the project: write its logs and metrics.
RUNTIME_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")


def worker_access(platform: str, grants_by_user: Mapping[str, Mapping[str, Grant]]) -> tuple[WorkerAccess, ...]:
    """Group users by their exact bucket grants: one worker identity per distinct set.

    The set without grants always exists (it is the instance templates' default account)
    and comes first. Keys are readable while the account id `<platform>-w-<key>` fits in
    30 characters, else a short hash of the set.
    """
    users_by_set: dict[tuple[Grant, ...], list[str]] = {(): []}
    for user, grants in grants_by_user.items():
        users_by_set.setdefault(tuple(sorted(grants.values())), []).append(user)
    return tuple(
        WorkerAccess(key=_key(platform, grants), grants=grants, users=tuple(users))
        for grants, users in sorted(users_by_set.items(), key=lambda item: (bool(item[0]), _key(platform, item[0])))
    )


def _key(platform: str, grants: tuple[Grant, ...]) -> str:
    if not grants:
        return NO_GRANTS
    readable = "-".join(f"{g.storage}-{'rw' if g.access == 'read-write' else 'ro'}" for g in grants)
    if len(f"{platform}-w-{readable}") <= ACCOUNT_ID_MAX and "_" not in readable:
        return readable
    return "s" + hashlib.sha256(readable.encode()).hexdigest()[:8]


def launch_condition(spec: GcpSpec) -> str:
    """CEL: this platform's worker instances and disks, its templates, its subnetwork."""
    prefix = f"{spec.name}-"
    hub = hub_name(spec.name)
    templates = ", ".join(f'"{naming.worker_template_name(spec.name, p.name)}"' for p in spec.profiles)

    def named(kind: str, collection: str) -> str:
        return f'resource.type == "compute.googleapis.com/{kind}" && resource.name.extract("/{collection}/{{name}}")'

    return " || ".join([
        f'({named("Instance", "instances")}.startsWith("{prefix}") '
        f'&& !resource.name.endsWith("/instances/{hub}"))',
        f'({named("Disk", "disks")}.startsWith("{prefix}") && !resource.name.endsWith("/disks/{hub}") '
        f'&& !resource.name.endsWith("/disks/{hub}-state"))',
        f"({named('InstanceTemplate', 'instanceTemplates')} in [{templates}])",
        f'(resource.type == "compute.googleapis.com/Subnetwork" '
        f'&& resource.name.endsWith("/subnetworks/{spec.name}-compute"))',
    ])


class Identity(Construct):
    def __init__(self, scope: Construct, spec: GcpSpec) -> None:
        super().__init__(scope, "identity")
        self.hub = res(self, "google_service_account", "hub", {
            "account_id": account_id(spec.name, "hub"),
            "display_name": f"graticule {spec.name}: hub and dask-gateway",
        })
        self.hub_member = f"serviceAccount:{ref(self.hub, 'email')}"
        self.hub_email = ref(self.hub, "email")

        # worker access key -> service account email
        self.workers: dict[str, str] = {}
        for access in spec.worker_access:
            account = res(self, "google_service_account", f"worker_{ident(access.key)}", {
                "account_id": account_id(spec.name, f"w-{access.key}"),
                "display_name": f"graticule {spec.name}: workers of {len(access.users)} user(s)",
                "description": "buckets: " + (", ".join(f"{g.bucket} ({g.access})" for g in access.grants) or "none"),
            })
            self.workers[access.key] = ref(account, "email")
            # The hub attaches this account to the workers it launches; nobody else may.
            res(self, "google_service_account_iam_member", f"hub_uses_worker_{ident(access.key)}", {
                "service_account_id": ref(account, "name"),
                "role": "roles/iam.serviceAccountUser",
                "member": self.hub_member,
            })
        self._hub_roles(spec)
        for role in RUNTIME_ROLES:
            short = role.split("/")[1].replace(".", "_")
            members = {"hub": self.hub_member}
            members.update({f"worker_{ident(k)}": f"serviceAccount:{e}" for k, e in self.workers.items()})
            for who, member in members.items():
                res(self, "google_project_iam_member", f"{who}_{short}", {
                    "project": spec.project,
                    "role": role,
                    "member": member,
                })

    def _hub_roles(self, spec: GcpSpec) -> None:
        role_prefix = f"graticule_{spec.name.replace('-', '_')}"
        launch = res(self, "google_project_iam_custom_role", "hub_launch", {
            "role_id": f"{role_prefix}_hub_launch",
            "title": f"graticule {spec.name}: launch workers",
            "description": "Create and delete the platform's worker VMs from its templates",
            "permissions": sorted(LAUNCH_PERMISSIONS),
        })
        read = res(self, "google_project_iam_custom_role", "hub_read", {
            "role_id": f"{role_prefix}_hub_read",
            "title": f"graticule {spec.name}: watch workers",
            "description": "Read instances, templates and operations",
            "permissions": sorted(READ_PERMISSIONS),
        })
        res(self, "google_project_iam_member", "hub_launch", {
            "project": spec.project,
            "role": ref(launch, "name"),
            "member": self.hub_member,
            "condition": {
                "title": "platform-workers-only",
                "description": f"only {spec.name}'s worker instances, templates and subnetwork",
                "expression": launch_condition(spec),
            },
        })
        res(self, "google_project_iam_member", "hub_read", {
            "project": spec.project,
            "role": ref(read, "name"),
            "member": self.hub_member,
        })
        self._machine_secret_roles(spec, role_prefix)

    def _machine_secret_roles(self, spec: GcpSpec, role_prefix: str) -> None:
        prefix = naming.gcp_machine_secret_prefix(spec.name)
        create = res(self, "google_project_iam_custom_role", "hub_machine_secrets_create", {
            "role_id": f"{role_prefix}_hub_msecrets_new",
            "title": f"graticule {spec.name}: create machine secrets",
            "description": "Create the secrets of the machines the hub launches",
            "permissions": sorted(MACHINE_SECRET_CREATE),
        })
        manage = res(self, "google_project_iam_custom_role", "hub_machine_secrets", {
            "role_id": f"{role_prefix}_hub_msecrets",
            "title": f"graticule {spec.name}: machine secrets",
            "description": "Read, add values to and delete the secrets of the machines the hub launches",
            "permissions": sorted(MACHINE_SECRET_PERMISSIONS),
        })
        res(self, "google_project_iam_member", "hub_machine_secrets_create", {
            "project": spec.project,
            "role": ref(create, "name"),
            "member": self.hub_member,
        })
        res(self, "google_project_iam_member", "hub_machine_secrets", {
            "project": spec.project,
            "role": ref(manage, "name"),
            "member": self.hub_member,
            "condition": {
                "title": "machine-secrets-only",
                "description": f"only {spec.name}'s machine secrets ({prefix}*)",
                "expression": f'resource.type.startsWith("secretmanager.googleapis.com/") '
                              f'&& resource.name.extract("/secrets/{{name}}").startsWith("{prefix}")',
            },
        })

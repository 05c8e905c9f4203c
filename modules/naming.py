"""Names that the rendered Terraform and the worker templates must agree on.

The cloud stacks (modules/aws, modules/gcp) create one launch/instance template per
hardware profile and export its id; `render.workers` tells the gateway which template
and which Terraform output to use. Both sides call these functions, so they cannot drift.
"""

from __future__ import annotations

import hashlib
import re

# The hub VM's public ports, named here too so the runtime and the stacks share one import.
from modules.spec import HUB_PORT, SCHEDULER_PORT  # noqa: F401  (re-exported)

_MAX_TEMPLATE_NAME = 63  # GCP resource names: [a-z]([-a-z0-9]*[a-z0-9])?, at most 63 chars


def worker_template_name(platform_name: str, profile: str) -> str:
    """`<platform>-<profile>`, valid as an AWS launch template and a GCP instance template name.

    Profile names may hold '_', which GCP refuses; too-long names are cut and given a
    short hash of the full name so that two long profiles never collide.
    """
    name = re.sub(r"[^a-z0-9-]", "-", f"{platform_name}-{profile}".lower()).strip("-")
    if len(name) <= _MAX_TEMPLATE_NAME and "_" not in profile:
        return name
    digest = hashlib.sha256(f"{platform_name}/{profile}".encode()).hexdigest()[:8]
    return f"{name[: _MAX_TEMPLATE_NAME - 9].rstrip('-')}-{digest}"


def launch_template_id_output(profile: str) -> str:
    """Terraform output holding the AWS launch template id of a profile's workers."""
    return f"launch_template_id_{profile}"


def instance_template_output(profile: str) -> str:
    """Terraform output holding the GCP instance template self link of a profile's workers."""
    return f"instance_template_{profile}"


# -- the hub VM on AWS (issue 13) ----------------------------------------------------------

HUB_STATE_DIR = "/var/lib/graticule"  # the runtime's state directory on the hub VM: the state volume
HUB_STATE_DEVICE = "/dev/xvdf"  # where the state volume is attached
VM_SETTINGS = "/etc/graticule/vm.json"  # written by the hub's user data, read by deploy.vm.boot
HOME_VOLUME_GIB = 20  # a user's notebook home on aws: one gp3 volume each (deploy.cloud.home_volumes), in cost.json
SECRET_KEYS_GENERATED = ("cookie-secret", "proxy-auth-token", "gateway-api-token", "admin-api-token",
                         "gateway-encrypt-keys")  # by the hub VM on first boot
OAUTH_CLIENT_SECRET_KEY = "oauth-client-secret"  # set by the operator, when the hub's auth needs one
# set by the operator, optionally: a PostgreSQL URL for the hub's, the gateway's and the ledger's tables
DATABASE_URL_KEY = "database-url"


def artifacts_bucket(platform_name: str, account_id: str) -> str:
    """The private bucket `platform apply` publishes the hub's wheelhouse and config to."""
    return f"{platform_name}-artifacts-{account_id}"


def secret_name(platform_name: str, key: str) -> str:
    """The Secrets Manager name of one of the platform's secrets."""
    return f"graticule/{platform_name}/{key}"


# -- the machines the gateway and the hub launch (issue 14) -----------------------------------

def machine_secret_name(platform_name: str, key: str) -> str:
    """A launched machine's secret (`cluster-<name>`, `server-<user>-<server>`): its TLS
    credentials and tokens, readable only by the machines `MachineSecrets.allow` names."""
    return f"graticule/{platform_name}/machines/{key}"


def kms_key_alias(platform_name: str) -> str:
    """The platform's KMS key (modules.aws.encryption), by alias."""
    return f"alias/graticule-{platform_name}"


def hub_role_name(platform_name: str) -> str:
    """The hub VM's IAM role (modules.aws.identity)."""
    return f"{platform_name}-hub"


def environment_prefix(build_key: str) -> str:
    """Where a locked (or synced) environment's wheels live in the artifacts bucket."""
    return f"environments/{build_key}"


# -- the hub VM on GCP (issue 15) ----------------------------------------------------------

GCP_STATE_DEVICE_NAME = "graticule-state"  # the state disk's device name on the hub instance
GCP_STATE_DEVICE = f"/dev/disk/by-id/google-{GCP_STATE_DEVICE_NAME}"  # where the guest sees it
_MAX_BUCKET_NAME = 63


def gcp_artifacts_bucket(platform_name: str, project: str) -> str:
    """`<platform>-artifacts-<project>` (bucket names are global); when that passes GCS's 63
    characters, the project is replaced by a short hash of it."""
    name = f"{platform_name}-artifacts-{project}"
    if len(name) <= _MAX_BUCKET_NAME:
        return name
    return f"{platform_name}-artifacts-{hashlib.sha256(project.encode()).hexdigest()[:12]}"


def gcp_secret_id(platform_name: str, key: str) -> str:
    """The Secret Manager id of one of the platform's secrets (ids allow no `/`)."""
    return f"graticule-{platform_name}-{key}"


def gcp_label_value(path: str) -> str:
    """A path as a GCE label value (lower-case letters, digits, `-` and `_` only): `/` -> `_`."""
    return path.replace("/", "_")


# -- the machines the gateway and the hub launch on GCP (issue 15) -----------------------------

def gcp_machine_secret_id(platform_name: str, key: str) -> str:
    """A launched machine's secret in Secret Manager (`cluster-<name>`, `server-<user>-<server>`):
    read by the hub alone, and handed to the machines it allows by its broker
    (deploy.gateway.machine_secret_broker). Ids allow letters, digits, `-` and `_` only."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"graticule-{platform_name}-machines-{key}")


def gcp_machine_secret_prefix(platform_name: str) -> str:
    """What every machine secret id of the platform starts with (the hub's IAM condition)."""
    return gcp_machine_secret_id(platform_name, "")


def machine_secrets_audience(platform_name: str) -> str:
    """The audience of the instance identity tokens a machine shows the broker: a token asked
    for another platform (or another purpose) is refused."""
    return f"graticule:{platform_name}:machine-secrets"


def notebook_tag(platform_name: str) -> str:
    """GCP: the network tag of notebook servers (modules.gcp.firewall; the hub's VM spawner sets
    it in place of the template's worker tag): Dask workers, anyone's, must not reach a user's
    server; only the hub's proxy does."""
    return f"{platform_name}-notebook"

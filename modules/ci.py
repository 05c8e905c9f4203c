"""CI trust: the names that the bootstrap stack, the platform stack and the workflows share.

`platform bootstrap` creates an OIDC trust for GitHub Actions and two identities (plan:
read-only, on pull requests and the nightly drift check; apply: main only, through the
protected environment). The workflows and the self-hosted runner refer to them by these
names, so every side calls these functions and they cannot drift apart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

GITHUB_OIDC_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# The GitHub environment that applies run in: protect it (deployment branches: main only).
APPLY_ENVIRONMENT = "platform-apply"
# Where a platform's Terraform state lives in the state bucket (S3 key / GCS prefix):
# the backends and the CI roles' object permissions must agree on it.
STATE_PREFIX = "graticule/{name}"
STATE_KEY = STATE_PREFIX + "/terraform.tfstate"


@dataclass(frozen=True)
class CiTrust:
    name: str  # the platform's name
    repository: str  # owner/name: the only repository the cloud trusts

    @property
    def plan_subjects(self) -> tuple[str, ...]:
        """OIDC `sub` claims of pull-request jobs and of scheduled runs on main (drift)."""
        return (f"repo:{self.repository}:pull_request", f"repo:{self.repository}:ref:refs/heads/main")

    @property
    def apply_subject(self) -> str:
        """Jobs in the protected environment, which only main may deploy to."""
        return f"repo:{self.repository}:environment:{APPLY_ENVIRONMENT}"


def _bounded(name: str, suffix: str, limit: int) -> str:
    """`<name><suffix>` cut to `limit` characters, with a short hash when cut."""
    text = f"{name}{suffix}"
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[: limit - len(suffix) - 7].rstrip('-')}-{digest}{suffix}"


def role_name(name: str, role: str) -> str:
    """AWS IAM role of the CI `role` ('plan' or 'apply'): `<platform>-ci-<role>`."""
    return _bounded(name, f"-ci-{role}", 64)


def role_arn(account_id: str, name: str, role: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:role/{role_name(name, role)}"


def runner_label(name: str) -> str:
    """The label of the platform's self-hosted runner VM."""
    return f"graticule-{name}"


def runner_group(name: str) -> str:
    """The organization's runner group that the platform's runner VM registers into: the
    admin creates it restricted to the repository and to its apply and drift workflows on
    main, and the VM refuses to register anywhere else."""
    return f"graticule-{name}"


def restricted_workflows(repository: str) -> tuple[str, ...]:
    """The runner group's "selected workflows": the only ones that may run on the VM."""
    return tuple(
        f"{repository}/.github/workflows/{workflow}.yml@refs/heads/main"
        for workflow in ("platform-apply", "platform-drift")
    )


def service_account_id(name: str, role: str) -> str:
    """GCP service account id (6..30 characters) of the CI `role`."""
    return _bounded(name, f"-ci-{role}", 30)


def service_account_email(project: str, name: str, role: str) -> str:
    return f"{service_account_id(name, role)}@{project}.iam.gserviceaccount.com"


def workload_identity_pool_id(name: str) -> str:
    """GCP workload identity pool id (4..32 characters)."""
    return _bounded(name, "-github", 32)

"""What the AWS and GCP stack specs take from the model in the same shape.

`render.terraform.aws_spec` and `render.terraform_gcp.gcp_spec` add what differs per
cloud (account fields, profiles' instance or machine types, worker identities).
"""

from __future__ import annotations

from typing import Any, Literal

from modules.spec import BucketSpec, BudgetSpec, Grant
from render.entitlements import storage_of
from render.schema import Platform


def checked_cloud(platform: Platform, target: Literal["aws", "gcp"], instance_kind: str) -> Any:
    """The `cloud.<target>` block, once the hub and every profile name an instance for it
    (`instance_kind` says what, in the error: "an aws instance type")."""
    cloud = getattr(platform.cloud, target)
    if cloud is None:
        raise ValueError(f"target {target} needs a `cloud.{target}` block")
    missing = [name for name, p in platform.profiles.items() if not getattr(p.instance, target)]
    if not getattr(platform.hub.instance, target) or missing:
        raise ValueError(f"target {target} needs {instance_kind} for the hub and profiles {missing}")
    return cloud


def shared_fields(platform: Platform, cloud: Any) -> dict[str, Any]:
    """`modules.spec.CloudSpec`'s fields, from the model and its `cloud.<target>` block; all
    but `worker_access`, which each cloud groups its own way."""
    return {
        "name": platform.name,
        "region": cloud.region,
        "vpc_cidr": cloud.vpc_cidr,
        "egress": cloud.egress,
        "state_bucket": cloud.state_bucket,
        "domain": platform.hub.domain,
        "log_retention_days": platform.integrations.logs.retention_days,
        "alert_emails": tuple(platform.integrations.alerts.email),
        "budgets": tuple(
            BudgetSpec(name=name, monthly_usd=budget.monthly_usd, alert_percents=tuple(budget.alerts))
            for name, budget in platform.budgets.items()
        ),
        "buckets": tuple(
            BucketSpec(name=s.name, bucket=s.bucket, existing=s.existing) for s in platform.integrations.storage
        ),
    }


def grants_by_user(platform: Platform) -> dict[str, dict[str, Grant]]:
    """User -> storage integration name -> the bucket grant that user's workers get."""
    storages = {s.name: s for s in platform.integrations.storage}
    return {
        user.name: {
            name: Grant(storage=name, bucket=storages[name].bucket, access=access)
            for name, access in storage_of(platform, user).items()
        }
        for user in platform.users
    }

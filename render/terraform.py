"""`terraform/<target>/main.tf.json`: the platform's cloud resources as Terraform JSON.

The AWS constructs take plain values (`modules.aws.spec`), filled here from the model;
the GCP ones likewise (`modules.gcp.spec`, filled in `render.terraform_gcp`). Both are
synthesized with cdktf core.
"""

from __future__ import annotations

from render.entitlements import storage_of
from render.schema import Platform


def synthesize_target(platform: Platform, target: str | None = None) -> dict[str, bytes]:
    target = target or platform.target
    if target == "local":
        return {}
    from modules import tf

    if target == "aws":
        from modules.aws import stack as aws_stack

        spec = aws_spec(platform)
        payload = tf.synthesize(platform.name, lambda stack: aws_stack.build(stack, spec))
    elif target == "gcp":
        from render.terraform_gcp import synthesize_gcp

        payload = synthesize_gcp(platform)  # plain values (modules.gcp.spec), like aws
    else:
        raise ValueError(f"unknown target {target!r}")
    return {f"terraform/{target}/main.tf.json": payload}


def aws_spec(platform: Platform):
    """The plain values the AWS constructs take."""
    from modules.aws.identity import worker_access
    from modules.aws.spec import AwsSpec, BucketSpec, BudgetSpec, Grant, ProfileSpec

    cloud = platform.cloud.aws
    if cloud is None:
        raise ValueError("target aws needs a `cloud.aws` block")
    missing = [name for name, p in platform.profiles.items() if not p.instance.aws]
    if not platform.hub.instance.aws or missing:
        raise ValueError(f"target aws needs an aws instance type for the hub and profiles {missing}")
    storages = {s.name: s for s in platform.integrations.storage}
    grants_by_user = {
        user.name: {
            name: Grant(storage=name, bucket=storages[name].bucket, access=access)
            for name, access in storage_of(platform, user).items()
        }
        for user in platform.users
    }
    return AwsSpec(
        name=platform.name,
        region=cloud.region,
        account_id=cloud.account_id,
        vpc_cidr=cloud.vpc_cidr,
        zones=cloud.zones,
        egress=cloud.egress,
        state_bucket=cloud.state_bucket,
        hub_instance_type=platform.hub.instance.aws,
        domain=platform.hub.domain,
        log_retention_days=platform.integrations.logs.retention_days,
        alert_emails=tuple(platform.integrations.alerts.email),
        profiles=tuple(
            ProfileSpec(
                name=name,
                instance_type=profile.instance.aws or "",
                spot=profile.spot,
                gpu_type=profile.gpu.type if profile.gpu else None,
                gpu_count=profile.gpu.count if profile.gpu else 0,
            )
            for name, profile in platform.profiles.items()
        ),
        budgets=tuple(
            BudgetSpec(name=name, monthly_usd=budget.monthly_usd, alert_percents=tuple(budget.alerts))
            for name, budget in platform.budgets.items()
        ),
        buckets=tuple(
            BucketSpec(name=s.name, bucket=s.bucket, existing=s.existing) for s in platform.integrations.storage
        ),
        worker_access=worker_access(grants_by_user),
        ci_runner_repository=(
            platform.ci.repository if platform.ci and platform.ci.runner == "self-hosted" else None
        ),
    )

"""The GCP stack's inputs: the plain values `modules.gcp` takes, filled from the model.

`synthesize_gcp(platform)` is what `render.terraform.synthesize_target` calls for target
gcp; `gcp_spec` is the conversion, kept apart so tests can build specs directly.
"""

from __future__ import annotations

from render.entitlements import storage_of
from render.schema import Platform

# platform.yaml GPU names -> GCP accelerator types (names not listed pass through).
ACCELERATORS = {
    "nvidia-t4": "nvidia-tesla-t4",
    "nvidia-p4": "nvidia-tesla-p4",
    "nvidia-p100": "nvidia-tesla-p100",
    "nvidia-v100": "nvidia-tesla-v100",
    "nvidia-a100": "nvidia-tesla-a100",
    "nvidia-a100-80gb": "nvidia-a100-80gb",
    "nvidia-h100": "nvidia-h100-80gb",
    "nvidia-l4": "nvidia-l4",
}


def accelerator_type(gpu_type: str) -> str:
    return ACCELERATORS.get(gpu_type, gpu_type)


def gcp_spec(platform: Platform):
    """The plain values the GCP constructs take."""
    from modules.gcp.identity import worker_access
    from modules.gcp.spec import BucketSpec, BudgetSpec, GcpSpec, Grant, ProfileSpec

    cloud = platform.cloud.gcp
    if cloud is None:
        raise ValueError("target gcp needs a `cloud.gcp` block")
    missing = [name for name, p in platform.profiles.items() if not p.instance.gcp]
    if not platform.hub.instance.gcp or missing:
        raise ValueError(f"target gcp needs a gcp machine type for the hub and profiles {missing}")
    storages = {s.name: s for s in platform.integrations.storage}
    grants_by_user = {
        user.name: {
            name: Grant(storage=name, bucket=storages[name].bucket, access=access)
            for name, access in storage_of(platform, user).items()
        }
        for user in platform.users
    }
    return GcpSpec(
        name=platform.name,
        project=cloud.project,
        region=cloud.region,
        vpc_cidr=cloud.vpc_cidr,
        egress=cloud.egress,
        state_bucket=cloud.state_bucket,
        hub_machine_type=platform.hub.instance.gcp,
        domain=platform.hub.domain,
        log_retention_days=platform.integrations.logs.retention_days,
        alert_emails=tuple(platform.integrations.alerts.email),
        profiles=tuple(
            ProfileSpec(
                name=name,
                machine_type=profile.instance.gcp or "",
                spot=profile.spot,
                gpu_type=accelerator_type(profile.gpu.type) if profile.gpu else None,
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
        worker_access=worker_access(platform.name, grants_by_user),
    )


def synthesize_gcp(platform: Platform) -> bytes:
    """`terraform/gcp/main.tf.json` for the platform."""
    from modules import tf
    from modules.gcp import stack

    spec = gcp_spec(platform)
    return tf.synthesize(platform.name, lambda root: stack.build(root, spec))

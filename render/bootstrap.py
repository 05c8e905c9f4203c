"""`platform bootstrap`'s stack: the state bucket and the CI trust, as Terraform JSON.

Pure like the rest of render. Kept apart from `render.build` because an admin applies it
once, with local state, before the platform's own stack (whose state it makes room for).
"""

from __future__ import annotations

from render.schema import Platform

TARGETS = ("aws", "gcp")


class BootstrapError(ValueError):
    """platform.yaml lacks what bootstrap needs (a `ci` block, the cloud block)."""


def trust_of(platform: Platform):
    from modules.ci import CiTrust

    if platform.ci is None:
        raise BootstrapError("bootstrap needs a `ci:` block with `repository: owner/name` in platform.yaml")
    return CiTrust(platform.name, platform.ci.repository)


def render_bootstrap(platform: Platform, target: str) -> dict[str, bytes]:
    """{'bootstrap/<target>/main.tf.json': ...} for `target` (aws or gcp)."""
    from modules import tf

    trust = trust_of(platform)
    if target not in TARGETS:
        raise BootstrapError(f"bootstrap targets are aws and gcp, not {target!r}")
    cloud = getattr(platform.cloud, target)
    if cloud is None:
        raise BootstrapError(f"bootstrap --target {target} needs a `cloud.{target}` block in platform.yaml")
    if target == "aws":
        from modules.aws.bootstrap import AwsBootstrapSpec, build

        spec = AwsBootstrapSpec(trust, cloud.region, cloud.account_id, cloud.state_bucket)
    else:
        from modules.gcp.bootstrap import GcpBootstrapSpec, build

        spec = GcpBootstrapSpec(trust, cloud.project, cloud.region, cloud.state_bucket)
    data = tf.synthesize(f"{platform.name}-bootstrap", lambda stack: build(stack, spec))
    return {f"bootstrap/{target}/main.tf.json": data}

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
    return CiTrust(platform.name, platform.ci.repository, platform.ci.runner == "self-hosted")


def render_bootstrap(platform: Platform, target: str) -> dict[str, bytes]:
    """{'bootstrap/<target>/main.tf.json': ...} for `target` (aws or gcp)."""
    from modules import tf

    trust = trust_of(platform)
    if target == "aws":
        from modules.aws import bootstrap as aws

        cloud = platform.cloud.aws
        if cloud is None:
            raise BootstrapError("bootstrap --target aws needs a `cloud.aws` block in platform.yaml")
        spec = aws.AwsBootstrapSpec(trust, cloud.region, cloud.account_id, cloud.state_bucket)
        data = tf.synthesize(f"{platform.name}-bootstrap", lambda stack: aws.build(stack, spec))
    elif target == "gcp":
        from modules.gcp import bootstrap as gcp

        block = platform.cloud.gcp
        if block is None:
            raise BootstrapError("bootstrap --target gcp needs a `cloud.gcp` block in platform.yaml")
        spec = gcp.GcpBootstrapSpec(trust, block.project, block.region, block.state_bucket)
        data = tf.synthesize(f"{platform.name}-bootstrap", lambda stack: gcp.build(stack, spec))
    else:
        raise BootstrapError(f"bootstrap targets are aws and gcp, not {target!r}")
    return {f"bootstrap/{target}/main.tf.json": data}

"""`terraform/<target>/main.tf.json`: the platform's cloud resources as Terraform JSON.

The AWS constructs take plain values (`modules.aws.spec`), filled here from the model;
the GCP ones likewise (`modules.gcp.spec`, filled in `render.terraform_gcp`). Both are
synthesized with cdktf core.
"""

from __future__ import annotations

import shutil

from render.cloud_spec import checked_cloud, grants_by_user, shared_fields
from render.errors import MissingPrerequisite
from render.schema import Platform

NODE_HELP = (
    "Node.js is not on PATH: rendering the {target} target runs terraform-cdk, which needs Node.js 20 or "
    "newer (e.g. `apt-get install nodejs`, `brew install node`, or https://nodejs.org)"
)


def require_node(target: str) -> None:
    # Checked before cdktf is imported: without node, jsii fails with a traceback at exit.
    if shutil.which("node") is None:
        raise MissingPrerequisite(NODE_HELP.format(target=target))


def synthesize_target(platform: Platform, target: str | None = None) -> dict[str, bytes]:
    target = target or platform.target
    if target == "local":
        return {}
    require_node(target)
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
    from modules.aws.spec import AwsSpec, ProfileSpec

    cloud = checked_cloud(platform, "aws", "an aws instance type")
    return AwsSpec(
        **shared_fields(platform, cloud),
        account_id=cloud.account_id,
        zones=cloud.zones,
        hub_instance_type=platform.hub.instance.aws,
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
        worker_access=worker_access(grants_by_user(platform)),
        ci_runner_repository=(
            platform.ci.repository if platform.ci and platform.ci.runner == "self-hosted" else None
        ),
        oauth_client_secret=platform.hub.auth.provider != "local",
    )

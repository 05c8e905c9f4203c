"""The hub VM's first-boot script as the cloud gives it to the instance, so a reviewer
reads it in build/: `hub-vm/user-data.sh` on aws (modules.aws.user_data), and
`hub-vm/startup-script.sh` on gcp (modules.gcp.startup_script, the instance's
`startup-script` metadata)."""

from __future__ import annotations

from render.schema import Platform


def render_hub_vm(platform: Platform, target: str | None = None) -> dict[str, bytes]:
    target = target or platform.target
    if target == "aws" and platform.cloud.aws is not None:
        from modules.aws.user_data import hub_user_data, log_group_name

        cloud = platform.cloud.aws
        script = hub_user_data(platform.name, cloud.region, cloud.account_id, log_group_name(platform.name))
        return {"hub-vm/user-data.sh": script.encode()}
    if target == "gcp" and platform.cloud.gcp is not None:
        from modules.gcp.startup_script import hub_startup_script

        cloud = platform.cloud.gcp
        return {"hub-vm/startup-script.sh": hub_startup_script(platform.name, cloud.project, cloud.region).encode()}
    return {}

"""`hub-vm/user-data.sh`: the AWS hub VM's first-boot script, as Terraform gives it to the
instance (modules.aws.user_data writes both), so a reviewer reads it in build/."""

from __future__ import annotations

from render.schema import Platform


def render_hub_vm(platform: Platform, target: str | None = None) -> dict[str, bytes]:
    if (target or platform.target) != "aws" or platform.cloud.aws is None:
        return {}
    from modules.aws.user_data import hub_user_data, log_group_name

    cloud = platform.cloud.aws
    script = hub_user_data(platform.name, cloud.region, cloud.account_id, log_group_name(platform.name))
    return {"hub-vm/user-data.sh": script.encode()}

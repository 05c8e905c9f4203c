"""The hub VM: JupyterHub, the dask-gateway server and the usage ledger, in a private subnet."""

from __future__ import annotations

from constructs import Construct

from modules.aws.base import name_tag, ref, res
from modules.aws.spec import AwsSpec
from modules.aws.templates import Images, architecture, metadata_options
from modules.aws.user_data import hub_user_data, log_group_name, terraform_literal

HUB_ROOT_GIB = 30


class Hub(Construct):
    """No public address: the subnet never maps one and has no route to the internet
    gateway (setting `associate_public_ip_address` would add nothing but a second source
    of truth).

    A fixed private address (`private_ip`, inside the subnet of `subnet_id`): a replaced
    hub takes its predecessor's, so running machines' dead-man switches and workers find
    it again. Changing it forces a replacement, which Terraform carries out destroy first
    (no `create_before_destroy` here or on anything that refers to the hub), so the old
    instance has let go of the address when the new one asks for it."""

    def __init__(self, scope: Construct, spec: AwsSpec, *, images: Images, subnet_id: str, private_ip: str,
                 security_group_id: str, instance_profile: str) -> None:
        super().__init__(scope, "hub")
        self.instance = res(self, "aws_instance", "hub", {
            "ami": ref(images.image("debian", architecture(spec.hub_instance_type)), "id"),
            "instance_type": spec.hub_instance_type,
            "subnet_id": subnet_id,
            "private_ip": private_ip,
            "vpc_security_group_ids": [security_group_id],
            "iam_instance_profile": instance_profile,
            "ebs_optimized": True,
            "monitoring": True,
            "metadata_options": metadata_options(),
            # The root disk's tags here, not `volume_tags`: those would also claim the state
            # volume attached beside it (the provider then flip-flops its tags on every plan).
            "root_block_device": {"encrypted": True, "volume_type": "gp3", "volume_size": HUB_ROOT_GIB,
                                  "tags": {**spec.tags, "Name": f"{spec.name}-hub"}},
            # No secret and nothing that changes with users or profiles: see modules.aws.user_data.
            "user_data": terraform_literal(
                hub_user_data(spec.name, spec.region, spec.account_id, log_group_name(spec.name))),
            "user_data_replace_on_change": False,
            "tags": name_tag(f"{spec.name}-hub", role="hub"),
            # A newer image must not replace the hub (and its ledger) on the next apply.
            "lifecycle": {"ignore_changes": ["ami"]},
        })

"""The AWS stack for one platform: provider, S3 state backend, every construct, outputs.

The outputs are what the AWS gateway backend and `platform status` read after apply.
"""

from __future__ import annotations

from cdktf import S3Backend, TerraformProvider, TerraformStack

from modules import naming
from modules.aws.base import ident, output, ref
from modules.aws.budgets import Budgets
from modules.aws.encryption import Encryption
from modules.aws.hub import Hub
from modules.aws.hub_state import HubState
from modules.aws.identity import Identity
from modules.aws.loadbalancer import LoadBalancer
from modules.aws.logging import Logging
from modules.aws.network import Network, hub_private_ip
from modules.aws.runner import Runner
from modules.aws.security import SecurityGroups
from modules.aws.spec import AwsSpec
from modules.aws.storage import Storage
from modules.aws.templates import Images, LaunchTemplates
from modules.ci import STATE_KEY
from modules.spec import SCHEDULER_PORT

PROVIDER_VERSION = ">= 5.60, < 6.0"
TERRAFORM_VERSION = ">= 1.10"  # the S3 backend's native lockfile


def build(stack: TerraformStack, spec: AwsSpec) -> None:
    _provider_and_backend(stack, spec)
    encryption = Encryption(stack, spec)
    network = Network(stack, spec)
    vpc_id = ref(network.vpc, "id")
    logging = Logging(stack, spec, vpc_id, encryption.key_arn)
    security = SecurityGroups(stack, spec, vpc_id, ref(network.s3_endpoint, "prefix_list_id"))
    if security.endpoints is not None:
        network.interface_endpoints(spec, ref(security.endpoints, "id"))
    identity = Identity(stack, spec, log_group_arn=logging.group_arn, key_arn=encryption.key_arn)
    images = Images(stack)
    templates = LaunchTemplates(stack, spec, images, ref(security.workers, "id"))
    hub_state = HubState(stack, spec, key_arn=encryption.key_arn,
                         availability_zone=ref(network.private_subnets[0], "availability_zone"))
    identity.grant_hub(
        launch_template_arns=[ref(t, "arn") for t in templates.by_profile.values()],
        private_subnet_arns=[ref(s, "arn") for s in network.private_subnets],
        worker_security_group_arn=ref(security.workers, "arn"),
        notebook_security_group_arn=ref(security.notebooks, "arn"),
        log_group_arn=logging.group_arn,
        artifacts_bucket_arn=ref(hub_state.artifacts, "arn"),
        key_arn=encryption.key_arn,
    )
    hub = Hub(stack, spec, images=images, subnet_id=ref(network.private_subnets[0], "id"),
              private_ip=hub_private_ip(spec.vpc_cidr, spec.zones),
              security_group_id=ref(security.hub, "id"), instance_profile=ref(identity.hub_profile, "name"))
    hub_state.attach(ref(hub.instance, "id"))
    lb = LoadBalancer(stack, spec, subnet_ids=[ref(s, "id") for s in network.public_subnets],
                      security_group_id=ref(security.lb, "id"), vpc_id=vpc_id,
                      hub_instance_id=ref(hub.instance, "id"))
    storage = Storage(stack, spec, encryption.key_arn)
    Budgets(stack, spec)
    runner = None
    if spec.ci_runner_repository:
        runner = Runner(stack, spec, spec.ci_runner_repository, images=images, vpc_id=vpc_id,
                        subnet_id=ref(network.private_subnets[0], "id"))

    outputs = {
        # References, not literals: outputs then follow the resources they describe.
        "hub_url": f"https://{ref(lb.certificate, 'domain_name') if lb.certificate else ref(lb.lb, 'dns_name')}",
        "load_balancer_dns_name": ref(lb.lb, "dns_name"),
        # Always the NLB's name (see modules/aws/loadbalancer.py): hub.domain names the ALB.
        "gateway_scheduler_address": f"tls://{ref(lb.scheduler, 'dns_name')}:{SCHEDULER_PORT}",
        "hub_instance_id": ref(hub.instance, "id"),
        "hub_private_ip": ref(hub.instance, "private_ip"),
        "region": spec.region,
        "vpc_id": vpc_id,
        "private_subnet_ids": [ref(s, "id") for s in network.private_subnets],
        "security_group_ids": {
            "load_balancer": ref(security.lb, "id"),
            "hub": ref(security.hub, "id"),
            "workers": ref(security.workers, "id"),
            "notebooks": ref(security.notebooks, "id"),
        },
        "launch_templates": {
            name: {"id": ref(t, "id"), "name": ref(t, "name"), "version": ref(t, "latest_version")}
            for name, t in templates.by_profile.items()
        },
        **{naming.launch_template_id_output(name): ref(t, "id") for name, t in templates.by_profile.items()},
        "worker_instance_profiles": {key: ref(p, "name") for key, p in identity.worker_profiles.items()},
        "worker_instance_profile_by_user": {
            user: ref(identity.worker_profiles[access.key], "name")
            for access in spec.worker_access for user in access.users
        },
        "log_group_name": ref(logging.group, "name"),
        "buckets": {name: ref(b, "bucket") for name, b in storage.buckets.items()},
        "artifacts_bucket": ref(hub_state.artifacts, "bucket"),
        "hub_state_volume_id": ref(hub_state.volume, "id"),
        "secret_names": {key: ref(secret, "name") for key, secret in hub_state.secrets.items()},
    }
    if runner is not None:
        outputs["ci_runner_instance_id"] = ref(runner.instance, "id")
    if lb.certificate is not None:
        outputs["certificate_validation_records"] = ref(lb.certificate, "domain_validation_options")
    for name, value in outputs.items():
        output(ident(name), value)


def _provider_and_backend(stack: TerraformStack, spec: AwsSpec) -> None:
    stack.add_override("terraform.required_version", TERRAFORM_VERSION)
    stack.add_override("terraform.required_providers",
                       {"aws": {"source": "hashicorp/aws", "version": PROVIDER_VERSION}})
    provider = TerraformProvider(stack, "aws", terraform_resource_type="aws")
    provider.add_override("region", spec.region)
    provider.add_override("allowed_account_ids", [spec.account_id])
    # Cost allocation: every taggable resource carries `platform`; instances, volumes and
    # templates add `profile`, budgets and launched instances `budget`.
    provider.add_override("default_tags", {"tags": spec.tags})
    backend = S3Backend(stack, bucket=spec.state_bucket, key=STATE_KEY.format(name=spec.name),
                        region=spec.region, encrypt=True)
    backend.add_override("use_lockfile", True)

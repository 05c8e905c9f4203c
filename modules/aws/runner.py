"""The self-hosted CI runner (`ci.runner: self-hosted`): applies never leave the VPC.

One small VM in a private subnet, no public IP, no inbound rule, HTTPS out only (to
GitHub and the AWS APIs, through NAT). Its instance profile holds the CI apply role made
by `platform bootstrap` (which trusts EC2 when the runner is self-hosted), so the apply
and drift workflows run here with no cloud keys anywhere. At first boot it registers
with GitHub using a registration token that the admin stores in SSM Parameter Store
(RUNNER_TOKEN_PARAMETER, SecureString): never in platform.yaml nor in the rendered files.
"""

from __future__ import annotations

from constructs import Construct

from modules.aws.base import name_tag, ref, res
from modules.aws.spec import AwsSpec
from modules.aws.templates import Images, architecture, metadata_options
from modules.ci import role_name, runner_label

RUNNER_INSTANCE_TYPE = "t3.small"
RUNNER_VERSION = "2.329.0"  # GitHub's runner updates itself after registering
RUNNER_TOKEN_PARAMETER = "/graticule/{name}/ci/runner-registration-token"

USER_DATA = """#!/bin/bash
# graticule: GitHub Actions runner for {repository}, label {label}
set -euo pipefail
apt-get update -q
apt-get install -y -q curl ca-certificates git jq unzip python3 python3-venv python3-pip awscli
id runner >/dev/null 2>&1 || useradd --create-home --shell /bin/bash runner
cd /home/runner
curl -fsSL -o runner.tar.gz \\
  https://github.com/actions/runner/releases/download/v{version}/actions-runner-linux-{arch}-{version}.tar.gz
sudo -u runner tar xzf runner.tar.gz && rm runner.tar.gz
./bin/installdependencies.sh
token=$(aws ssm get-parameter --region {region} --with-decryption --name {parameter} \\
  --query Parameter.Value --output text)
sudo -u runner ./config.sh --unattended --replace --url https://github.com/{repository} \\
  --token "$token" --labels {label} --name "{label}-$(hostname)"
./svc.sh install runner
./svc.sh start
"""


class Runner(Construct):
    def __init__(self, scope: Construct, spec: AwsSpec, repository: str, *, images: Images,
                 vpc_id: str, subnet_id: str) -> None:
        super().__init__(scope, "ci_runner")
        group = res(self, "aws_security_group", "ci_runner", {
            "name": f"{spec.name}-ci-runner",
            "description": "graticule CI runner: no inbound, HTTPS out to GitHub and AWS APIs",
            "vpc_id": vpc_id,
            "tags": name_tag(f"{spec.name}-ci-runner"),
        })
        res(self, "aws_vpc_security_group_egress_rule", "ci_runner_https", {
            "security_group_id": ref(group, "id"),
            "description": "HTTPS out: GitHub, the Terraform registry, AWS APIs",
            "ip_protocol": "tcp",
            "from_port": 443,
            "to_port": 443,
            "cidr_ipv4": "0.0.0.0/0",
        })
        profile = res(self, "aws_iam_instance_profile", "ci_runner", {
            "name": f"{spec.name}-ci-runner",
            "role": role_name(spec.name, "apply"),  # made by `platform bootstrap`
        })
        arch = architecture(RUNNER_INSTANCE_TYPE)
        self.instance = res(self, "aws_instance", "ci_runner", {
            "ami": ref(images.image("debian", arch), "id"),
            "instance_type": RUNNER_INSTANCE_TYPE,
            "subnet_id": subnet_id,
            "vpc_security_group_ids": [ref(group, "id")],
            "iam_instance_profile": ref(profile, "name"),
            "associate_public_ip_address": False,
            "ebs_optimized": True,
            "monitoring": True,
            "metadata_options": metadata_options(),
            "root_block_device": {"encrypted": True, "volume_type": "gp3", "volume_size": 30},
            "user_data": USER_DATA.format(
                repository=repository,
                label=runner_label(spec.name),
                version=RUNNER_VERSION,
                arch="x64" if arch == "x86_64" else "arm64",
                region=spec.region,
                parameter=RUNNER_TOKEN_PARAMETER.format(name=spec.name),
            ),
            "user_data_replace_on_change": True,
            "tags": name_tag(f"{spec.name}-ci-runner", role="ci-runner"),
            "lifecycle": {"ignore_changes": ["ami"]},
        })

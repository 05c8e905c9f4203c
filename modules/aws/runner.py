"""The self-hosted CI runner (`ci.runner: self-hosted`): applies never leave the VPC.

One small VM in a private subnet: no public IP, no inbound rule, HTTPS out only (to
GitHub, the Terraform registry and the AWS APIs, through NAT), IMDSv2 with one hop.

The VM holds no CI privileges. Its own role may read one thing: the registration token
(of the repository's organization) that the admin stores in SSM Parameter Store
(RUNNER_TOKEN_PARAMETER, a SecureString under the default `aws/ssm` key), never in
platform.yaml nor in the rendered files. The
apply and drift jobs that run here obtain the apply or plan role the same way as on
GitHub-hosted runners: GitHub's OIDC token, exchanged for short-lived credentials of a
role that trusts only this repository's protected environment (apply) or main (drift).
So a job that reaches the runner's label some other way (say, a pull request editing
`runs-on`) finds no admin credentials in the instance metadata. And it gets no job of
that kind: the VM registers only into the organization's runner group `runner_group()`,
which the admin creates restricted to this repository and to the apply and drift
workflows on main (`restricted_workflows()`; labels alone are no security boundary).
Without that group, registration fails and the runner never takes a job.
"""

from __future__ import annotations

import json

from constructs import Construct

from modules.aws.base import name_tag, ref, res
from modules.aws.spec import AwsSpec
from modules.aws.templates import Images, architecture, metadata_options
from modules.ci import runner_group, runner_label

RUNNER_INSTANCE_TYPE = "t3.small"
RUNNER_VERSION = "2.329.0"  # GitHub's runner updates itself after registering
# SHA-256 of the release archives, as published in the release notes of RUNNER_VERSION.
RUNNER_SHA256 = {
    "x64": "194f1e1e4bd02f80b7e9633fc546084d8d4e19f3928a324d512ea53430102e1d",
    "arm64": "56768348b3d643a6a29d4ad71e9bdae0dc0ef1eb01afe0f7a8ee097b039bfaaf",
}
RUNNER_TOKEN_PARAMETER = "/graticule/{name}/ci/runner-registration-token"

USER_DATA = """#!/bin/bash
# graticule: GitHub Actions runner for {repository}, label {label}
set -euo pipefail
# Egress is HTTPS only: fetch Debian's packages over HTTPS too.
find /etc/apt -type f \\( -name '*.list' -o -name '*.sources' \\) -exec sed -i 's|http://|https://|g' {{}} +
apt-get update -q
apt-get install -y -q curl ca-certificates git jq unzip python3 python3-venv python3-pip awscli
id runner >/dev/null 2>&1 || useradd --create-home --shell /bin/bash runner
cd /home/runner
curl -fsSL -o runner.tar.gz \\
  https://github.com/actions/runner/releases/download/v{version}/actions-runner-linux-{arch}-{version}.tar.gz
echo "{sha256}  runner.tar.gz" | sha256sum --check --strict -
sudo -u runner tar xzf runner.tar.gz && rm runner.tar.gz
./bin/installdependencies.sh
token=$(aws ssm get-parameter --region {region} --with-decryption --name {parameter} \\
  --query Parameter.Value --output text)
# Organization-level, into the restricted runner group only (see the module's docstring).
sudo -u runner ./config.sh --unattended --replace --url https://github.com/{owner} \\
  --runnergroup {group} --token "$token" --labels {label} --name "{label}-$(hostname)"
./svc.sh install runner
./svc.sh start
"""


class Runner(Construct):
    def __init__(self, scope: Construct, spec: AwsSpec, repository: str, *, images: Images,
                 vpc_id: str, subnet_id: str) -> None:
        super().__init__(scope, "ci_runner")
        name = f"{spec.name}-ci-runner"
        group = res(self, "aws_security_group", "ci_runner", {
            "name": name,
            "description": "graticule CI runner: no inbound, HTTPS out to GitHub and AWS APIs",
            "vpc_id": vpc_id,
            "tags": name_tag(name),
        })
        # GitHub's and AWS's addresses change without notice: HTTPS to anywhere, nothing else.
        res(self, "aws_vpc_security_group_egress_rule", "ci_runner_https", {
            "security_group_id": ref(group, "id"),
            "description": "HTTPS out: GitHub, the Terraform registry, AWS APIs, Debian packages",
            "ip_protocol": "tcp",
            "from_port": 443,
            "to_port": 443,
            "cidr_ipv4": "0.0.0.0/0",
        })
        parameter = RUNNER_TOKEN_PARAMETER.format(name=spec.name)
        role = res(self, "aws_iam_role", "ci_runner", {
            "name": name,
            "description": f"graticule {spec.name}: the CI runner VM (reads its registration token, nothing else)",
            "assume_role_policy": json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }],
            }, sort_keys=True),
            "tags": name_tag(name),
        })
        res(self, "aws_iam_role_policy", "ci_runner_registration", {
            "name": "registration-token",
            "role": ref(role, "id"),
            "policy": json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Action": "ssm:GetParameter",
                    "Resource": f"arn:{spec.partition}:ssm:{spec.region}:{spec.account_id}:parameter{parameter}",
                }],
            }, sort_keys=True),
        })
        profile = res(self, "aws_iam_instance_profile", "ci_runner", {
            "name": name,
            "role": ref(role, "name"),
            "tags": name_tag(name),
        })
        arch = architecture(RUNNER_INSTANCE_TYPE)
        runner_arch = "x64" if arch == "x86_64" else "arm64"
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
                owner=repository.split("/")[0],
                group=runner_group(spec.name),
                label=runner_label(spec.name),
                version=RUNNER_VERSION,
                arch=runner_arch,
                sha256=RUNNER_SHA256[runner_arch],
                region=spec.region,
                parameter=parameter,
            ),
            "user_data_replace_on_change": True,
            "tags": name_tag(name, role="ci-runner"),
            "lifecycle": {"ignore_changes": ["ami"]},
        })

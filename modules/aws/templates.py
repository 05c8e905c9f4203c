"""Machine images and one launch template per hardware profile.

The gateway launches notebook servers, schedulers and workers from these templates with
`RunInstances(LaunchTemplate=..., SubnetId=<a private subnet>, IamInstanceProfile=<the
user's worker profile>, TagSpecifications=[platform, budget, user])`; the hub's IAM role
allows nothing else (see identity.py).

A machine that powers itself off is terminated (its dead-man switch, deploy/cloud/deadman.py).
Spot is not set here: the machines layer asks for it per request when the profile allows
it (`spot` in workers/<profile>.json), so that it can fall back to on-demand, which a
request cannot ask for against a spot template.
"""

from __future__ import annotations

import re

from constructs import Construct

from modules import naming
from modules.aws.base import data, name_tag, ref, res
from modules.aws.spec import AwsSpec, ProfileSpec

# Debian's official images (account 136693071363); for GPU profiles, AWS's Deep Learning
# base image, which carries the NVIDIA driver and CUDA.
IMAGES = {
    "debian": {"owners": ["136693071363"], "name": "debian-12-{arch}-*"},
    "gpu": {"owners": ["amazon"], "name": "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"},
}
ROOT_VOLUME_GIB = 50

# Graviton families have a 'g' right after the generation digit: m7g, c7gn, t4g, g5g, im4gn.
_GRAVITON = re.compile(r"^[a-z]+\d+g[a-z]*\.")


def architecture(instance_type: str) -> str:
    return "arm64" if _GRAVITON.match(instance_type) else "x86_64"


class Images(Construct):
    """`aws_ami` lookups, one per (image kind, architecture) actually used."""

    def __init__(self, scope: Construct) -> None:
        super().__init__(scope, "images")
        self._nodes: dict[str, object] = {}

    def image(self, kind: str, arch: str):
        key = f"{kind}_{arch}"
        if key not in self._nodes:
            pattern = IMAGES[kind]["name"].format(arch="amd64" if arch == "x86_64" else "arm64")
            self._nodes[key] = data(self, "aws_ami", key, {
                "most_recent": True,
                "owners": IMAGES[kind]["owners"],
                "filter": [
                    {"name": "name", "values": [pattern]},
                    {"name": "architecture", "values": [arch]},
                    {"name": "virtualization-type", "values": ["hvm"]},
                ],
            })
        return self._nodes[key]


def metadata_options() -> dict[str, object]:
    # IMDSv2 only, and one hop: containers on the VM cannot borrow the instance's role.
    return {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1}


class LaunchTemplates(Construct):
    def __init__(self, scope: Construct, spec: AwsSpec, images: Images, security_group_id: str) -> None:
        super().__init__(scope, "templates")
        self.by_profile = {
            profile.name: self._template(spec, profile, images, security_group_id) for profile in spec.profiles
        }

    def _template(self, spec: AwsSpec, profile: ProfileSpec, images: Images, security_group_id: str):
        arch = architecture(profile.instance_type)
        image = images.image("gpu" if profile.gpu_type else "debian", arch)
        tags = {"profile": profile.name}
        if profile.gpu_type:
            tags["gpu"] = f"{profile.gpu_count}x{profile.gpu_type}"
        attributes: dict[str, object] = {
            "name": naming.worker_template_name(spec.name, profile.name),
            "description": f"graticule {spec.name}: profile {profile.name}",
            "image_id": ref(image, "id"),
            "instance_type": profile.instance_type,
            "ebs_optimized": True,
            "instance_initiated_shutdown_behavior": "terminate",
            "update_default_version": True,
            "vpc_security_group_ids": [security_group_id],
            "metadata_options": metadata_options(),
            "monitoring": {"enabled": True},
            "block_device_mappings": [{
                "device_name": ref(image, "root_device_name"),
                "ebs": {
                    "encrypted": "true",
                    "volume_size": ROOT_VOLUME_GIB,
                    "volume_type": "gp3",
                    "delete_on_termination": "true",
                },
            }],
            "tag_specifications": [
                {"resource_type": kind, "tags": {**spec.tags, **tags}} for kind in ("instance", "volume")
            ],
            "tags": name_tag(f"{spec.name}-{profile.name}", **tags),
        }
        return res(self, "aws_launch_template", profile.name, attributes)

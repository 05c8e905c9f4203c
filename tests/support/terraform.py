"""Terraform for tests: the real CLI with providers from a local filesystem mirror.

    from tests.support.terraform import tf_plugin_dir  # noqa: F401  (pytest fixture)
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from deploy.terraform import MIRROR_ROOTS, PLUGIN_DIR_ENV, find_provider_mirror
from render.schema import Platform
from render.validate import validate_text

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = (REPO.parent / "shared" / "platform.example.yaml", REPO / "platform.yaml")


def provider_mirror_or_skip(providers: tuple[str, ...] = ("hashicorp/aws",)) -> Path:
    if shutil.which("terraform") is None:
        pytest.skip("the terraform CLI is not installed")
    mirror = find_provider_mirror(providers)
    if mirror is None:
        pytest.skip(
            f"no Terraform provider mirror with {', '.join(providers)} for this platform: set "
            f"{PLUGIN_DIR_ENV} or install one under {', '.join(MIRROR_ROOTS)}"
        )
    return mirror


def example_platform(target: str = "aws", *, egress: str = "nat", existing_bucket: bool = False) -> Platform:
    """The example platform.yaml (the schema contract) aimed at `target`; optionally with
    `egress` and an extra, `existing: true` storage integration granted read-only."""
    example = _example_path()
    yaml = YAML()
    document = yaml.load(example.read_text())
    document["target"] = target
    for cloud in ("aws", "gcp"):
        set_egress(document, cloud, egress)
    if existing_bucket:
        document["integrations"]["storage"].append(
            {"name": "archive", "bucket": "oceanlab-archive", "existing": True, "access": {"ocean": "read"}}
        )
    text = io.StringIO()
    yaml.dump(document, text)
    return validate_text(text.getvalue(), display=f"{example.name} ({target}, egress {egress})")


def set_egress(document: dict, cloud: str, egress: str) -> None:
    """Set `cloud.<cloud>.egress`; with no egress, GitHub login cannot work (validation
    refuses it), so the hub logs in through an OIDC provider inside the network instead."""
    document["cloud"][cloud]["egress"] = egress
    if egress == "none":
        document["hub"]["auth"] = {
            "provider": "oidc",
            "oidc": {"issuer": "https://login.oceanlab.internal", "client_id": "graticule"},
        }


def _example_path() -> Path:
    # The schema contract from ../shared, else the repository's copy (as tests/conftest.py).
    return next((candidate for candidate in EXAMPLES if candidate.is_file()), EXAMPLES[-1])


@pytest.fixture(scope="session")
def tf_plugin_dir() -> Path:
    """The filesystem mirror holding hashicorp/aws; skips the test when there is none."""
    return provider_mirror_or_skip()


# AWS services the rendered stacks call, pointed at moto by `moto_override`.
MOTO_SERVICES = ("acm", "budgets", "ec2", "elbv2", "iam", "kms", "logs", "s3", "secretsmanager", "ssm", "sts")
# moto's stock images (its amis.json): Amazon Linux 2 and AL2022 arm64, owned by "amazon".
MOTO_IMAGES = {"x86_64": "amzn2-ami-hvm-*", "arm64": "al2022-ami-*-arm64"}
MOTO_IMAGE_OWNER = "137112412989"

# What moto 5.2.1 cannot do, and how the override works around it (never the stack):
# - Budgets: no ListTagsForResource and no DescribeSubscribersForNotification, so the
#   provider cannot read a budget back: `aws_budgets_budget` is left out of apply, plan
#   and destroy with -target (see `moto_targets`); `terraform validate` still covers it.
# - MonitorInstances is not implemented: the hub is applied with `monitoring = false`.
# - Security group rules that reference another group or a prefix list come back
#   without their description: those rules ignore `description` changes.
# - A launch template's own tags come back as an extra "launch-template" tag
#   specification: launch templates ignore `tag_specifications` changes.
UNSUPPORTED_BY_MOTO = ("aws_budgets_budget",)


def moto_override(main: dict, moto_url: str, state_path: Path) -> dict:
    """A Terraform override document (`*_override.tf.json`) that points the rendered AWS
    stack at a moto server: local state, fake credentials, moto's endpoints and images."""
    resources = main.get("resource", {})
    override: dict = {
        "terraform": {"backend": {"local": {"path": str(state_path)}}},
        "provider": {"aws": {
            "access_key": "testing",
            "secret_key": "testing",
            "skip_credentials_validation": True,
            "skip_metadata_api_check": True,
            "s3_use_path_style": True,
            "endpoints": [dict.fromkeys(MOTO_SERVICES, moto_url)],
        }},
        "data": {"aws_ami": {
            name: {
                "owners": [MOTO_IMAGE_OWNER],
                "filter": [{"name": "name", "values": [MOTO_IMAGES[_architecture(block)]]}],
            }
            for name, block in main.get("data", {}).get("aws_ami", {}).items()
        }},
        "resource": {},
    }
    patches = override["resource"]
    for name in resources.get("aws_instance", {}):
        patches.setdefault("aws_instance", {})[name] = {"monitoring": False}
    for kind in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"):
        for name, block in resources.get(kind, {}).items():
            if block.get("referenced_security_group_id") or block.get("prefix_list_id"):
                patches.setdefault(kind, {})[name] = {"lifecycle": {"ignore_changes": ["description"]}}
    for name in resources.get("aws_launch_template", {}):
        patches.setdefault("aws_launch_template", {})[name] = {"lifecycle": {"ignore_changes": ["tag_specifications"]}}
    return override


def _architecture(ami_block: dict) -> str:
    return next(f["values"][0] for f in ami_block.get("filter", []) if f["name"] == "architecture")


def moto_targets(main: dict) -> list[str]:
    """`-target=` arguments for every resource moto can hold (all but UNSUPPORTED_BY_MOTO)."""
    return [
        f"-target={kind}.{name}"
        for kind, named in sorted(main.get("resource", {}).items())
        if kind not in UNSUPPORTED_BY_MOTO
        for name in sorted(named)
    ]

"""Point the `platform` CLI's Terraform at a moto server, from outside the rendered output.

Writes a provider override file and a backend config file into a directory of the test's
own and returns the environment that makes `deploy.cloud_stack` use them
(GRATICULE_TF_OVERRIDES, GRATICULE_TF_BACKEND_CONFIG) plus moto's fake credentials, moto as
every SDK's endpoint and the offline wheel source of the hub's wheelhouse.
"""

from __future__ import annotations

import json
from pathlib import Path

from deploy.cloud_stack import BACKEND_CONFIG_ENV, OVERRIDES_ENV
from deploy.runtime.env import WHEELHOUSE_FIND_LINKS
from tests.support.hub_wheelhouse import hub_wheels
from tests.support.moto_server import CREDENTIALS, MotoServer
from tests.support.terraform import UNSUPPORTED_BY_MOTO, moto_override

# moto serves plain HTTP and enforces a bucket policy's Deny on object requests, so the hub's
# artifacts bucket's TLS-only policy (aws:SecureTransport) would refuse `platform apply`'s
# publishing and the hub's downloads: left out of applies against moto (its rendering is
# checked in tests/test_hub_vm_render.py), as tests/test_bootstrap_apply.py lifts the state
# bucket's.
DENIED_OVER_PLAIN_HTTP = {("aws_s3_bucket_policy", "artifacts")}

_SKIPS = {  # for the S3 backend
    "skip_credentials_validation": True,
    "skip_requesting_account_id": True,
    "skip_metadata_api_check": True,
    "skip_region_validation": True,
}


def moto_terraform_env(server: MotoServer, directory: Path, mains: list[dict]) -> dict[str, str]:
    """Environment for `platform plan/apply/destroy` against `server`, for every rendered
    AWS stack in `mains` (e.g. base and head of a pull request).

    The override is tests/support/terraform.py's `moto_override` for the resources all
    stacks share (an override of a resource a stack lacks is an error), minus its local
    backend (the S3 backend is kept and pointed at moto with -backend-config) and its image
    lookups (the moto server holds images of the right names, see `moto_server_env`).
    What moto cannot hold (UNSUPPORTED_BY_MOTO) is left out with `-target` through
    Terraform's own TF_CLI_ARGS_plan.
    """
    overrides = directory / "overrides"
    overrides.mkdir(parents=True, exist_ok=True)
    shared = _shared_resources(mains)
    override = moto_override({"resource": shared}, server.url, directory / "unused.tfstate")
    override.pop("terraform")
    override.pop("data")
    override["provider"]["aws"]["skip_region_validation"] = True
    (overrides / "moto_override.tf.json").write_text(json.dumps(override, indent=2))
    backend = directory / "moto.s3.tfbackend"
    lines = [
        f'endpoints = {{ s3 = "{server.url}", sts = "{server.url}", iam = "{server.url}" }}',
        "use_path_style = true",
        f'access_key = "{CREDENTIALS["aws_access_key_id"]}"',
        f'secret_key = "{CREDENTIALS["aws_secret_access_key"]}"',
        *(f"{key} = true" for key in _SKIPS),
    ]
    backend.write_text("\n".join(lines) + "\n")
    targets = sorted({
        f"-target={kind}.{name}"
        for main in mains
        for kind, named in main.get("resource", {}).items()
        if kind not in UNSUPPORTED_BY_MOTO
        for name in named
        if (kind, name) not in DENIED_OVER_PLAIN_HTTP
    })
    return {
        OVERRIDES_ENV: str(overrides),
        BACKEND_CONFIG_ENV: str(backend),
        "TF_CLI_ARGS_plan": " ".join(targets),
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": server.region,
        "AWS_EC2_METADATA_DISABLED": "true",
        # `platform apply` publishes the hub's wheelhouse and config with boto3 (deploy.vm.publish):
        # to moto, and from this machine's installed packages, never the internet
        "AWS_ENDPOINT_URL": server.url,
        WHEELHOUSE_FIND_LINKS: str(hub_wheels()),
    }


def _shared_resources(mains: list[dict]) -> dict[str, dict]:
    first, *rest = [main.get("resource", {}) for main in mains]
    return {
        kind: {name: block for name, block in named.items() if all(name in other.get(kind, {}) for other in rest)}
        for kind, named in first.items()
    }


# Images the AWS stack looks up (modules/aws/templates.py: Debian's account, AWS's GPU
# image by the `amazon` alias, which moto gives every image loaded from MOTO_AMIS_PATH).
_AMIS = (
    ("ami-0debian12amd64", "debian-12-amd64-20260101-0000", "136693071363", "x86_64"),
    ("ami-0debian12arm64", "debian-12-arm64-20260101-0000", "136693071363", "arm64"),
    ("ami-0dlbasegpu0001", "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20260101",
     "898082745236", "x86_64"),
)


def moto_server_env(directory: Path) -> dict[str, str]:
    """Environment for the moto server process: the images above, IAM's managed policies."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "amis.json"
    path.write_text(json.dumps([
        {
            "ami_id": ami_id, "name": name, "description": name, "owner_id": owner, "public": True,
            "virtualization_type": "hvm", "architecture": arch, "state": "available",
            "image_type": "machine", "hypervisor": "xen", "root_device_type": "ebs",
            "root_device_name": "/dev/xvda", "sriov": "simple",
        }
        for ami_id, name, owner, arch in _AMIS
    ]))
    return {"MOTO_AMIS_PATH": str(path), "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}

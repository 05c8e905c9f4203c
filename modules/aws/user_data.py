"""The hub VM's user data: a plain POSIX sh script, rendered once per platform.

It holds no secret and nothing that changes with users, groups, profiles or budgets (a
platform.yaml change must never replace the hub): only the platform's name, region,
artifacts bucket and log group. On first boot it writes /etc/graticule/vm.json, takes
the instance role's credentials from IMDSv2, waits for `config/current.json` in the
artifacts bucket (`platform apply` writes it after Terraform), downloads the wheelhouse
it names with curl's SigV4 signing (no AWS CLI on the image, no internet: the S3 gateway
endpoint is enough), takes uv out of the uv wheel, installs graticule and its pinned
dependencies offline with hashes required, then hands over to `deploy.vm.boot`.
"""

from __future__ import annotations

import json

from modules import naming
from modules.hub_boot_script import VENV, WHEELHOUSE, fill

_SCRIPT = r"""#!/bin/sh
# graticule hub VM, first boot. Rendered by `platform render`: edit platform.yaml, not this.
set -eu
umask 077
REGION=__REGION__
BUCKET=__BUCKET__
VENV=__VENV__
WHEELHOUSE=__WHEELHOUSE__
export AWS_DEFAULT_REGION="$REGION" AWS_REGION="$REGION"
mkdir -p /etc/graticule /var/log/graticule "$WHEELHOUSE"
cat > __SETTINGS__ <<'VMJSON'
__VMJSON__
VMJSON
__HELPERS__phase user-data
# The endpoint: AWS_ENDPOINT_URL when set (a VPC endpoint by name, a test's stand-in),
# else S3's regional endpoint (through the VPC's S3 gateway endpoint).
if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
    s3_url() { echo "${AWS_ENDPOINT_URL%/}/$BUCKET/$1"; }
else
    s3_url() { echo "https://$BUCKET.s3.$REGION.amazonaws.com/$1"; }
fi
credentials() {
    token=$(curl -fsS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 3600" \
        http://169.254.169.254/latest/api/token) || return 1
    imds=http://169.254.169.254/latest/meta-data/iam/security-credentials
    role=$(curl -fsS -H "X-aws-ec2-metadata-token: $token" "$imds/") || return 1
    role=$(echo "$role" | head -n 1)
    curl -fsS -H "X-aws-ec2-metadata-token: $token" "$imds/$role" > /run/graticule-credentials.json || return 1
    KEY_ID=$(field /run/graticule-credentials.json AccessKeyId)
    SECRET=$(field /run/graticule-credentials.json SecretAccessKey)
    SESSION=$(field /run/graticule-credentials.json Token)
    rm -f /run/graticule-credentials.json
}
# fetch KEY FILE [CURL OPTIONS]: one object of the artifacts bucket, signed with the role's credentials.
fetch() {
    key=$1 file=$2
    shift 2
    curl -fsS "$@" -o "$file" --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY_ID:$SECRET" \
        -H "x-amz-security-token: $SESSION" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$(s3_url "$key")"
}
get() { fetch "$1" "$2" --retry 5 --retry-all-errors; }
# the instance's role: the metadata service may lag its instance profile by a few seconds
until credentials 2>/dev/null; do echo "graticule: waiting for the instance role"; sleep 2; done
# `platform apply` publishes the configuration after Terraform made this instance.
until fetch config/current.json /run/graticule-current.json 2>/dev/null; do
    echo "graticule: waiting for config/current.json in s3://$BUCKET"
    sleep 3
    until credentials 2>/dev/null; do sleep 2; done
done
downloaded() { :; }
__INSTALL_AND_BOOT__"""


def vm_settings(platform: str, region: str, bucket: str, log_group: str) -> dict[str, str]:
    """The contents of /etc/graticule/vm.json."""
    return {
        "platform": platform,
        "region": region,
        "bucket": bucket,
        "log_group": log_group,
        "state_dir": naming.HUB_STATE_DIR,
        "state_device": naming.HUB_STATE_DEVICE,
    }


def hub_user_data(platform: str, region: str, account_id: str, log_group: str) -> str:
    """The script, the same bytes for the same four values."""
    bucket = naming.artifacts_bucket(platform, account_id)
    settings = json.dumps(vm_settings(platform, region, bucket, log_group), sort_keys=True)
    values = {
        "__REGION__": region, "__BUCKET__": bucket, "__VENV__": VENV, "__WHEELHOUSE__": WHEELHOUSE,
        "__SETTINGS__": naming.VM_SETTINGS, "__VMJSON__": settings,
    }
    return fill(_SCRIPT, values)


def log_group_name(platform: str) -> str:
    """The platform's log group (modules.aws.logging creates it)."""
    return f"/graticule/{platform}"


def terraform_literal(text: str) -> str:
    """`text` as a Terraform string literal: the shell's `${...}` and `%{` are not templates."""
    return text.replace("${", "$${").replace("%{", "%%{")

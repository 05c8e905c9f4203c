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

VENV = "/opt/graticule/venv"
WHEELHOUSE = "/opt/graticule/wheelhouse"

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
phase() { echo "graticule-phase $1 $(date +%s.%N)"; }
phase user-data
# The endpoint: AWS_ENDPOINT_URL when set (a VPC endpoint by name, a test's stand-in),
# else S3's regional endpoint (through the VPC's S3 gateway endpoint).
if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
    s3_url() { echo "${AWS_ENDPOINT_URL%/}/$BUCKET/$1"; }
else
    s3_url() { echo "https://$BUCKET.s3.$REGION.amazonaws.com/$1"; }
fi
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
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
wheelhouse=$(field /run/graticule-current.json wheelhouse)
phase wheelhouse-download
dir="$WHEELHOUSE/$wheelhouse"
mkdir -p "$dir"
get "wheelhouse/$wheelhouse/requirements.txt" "$dir/requirements.txt"
get "wheelhouse/$wheelhouse/index.json" "$dir/index.json"
python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["files"]))' "$dir/index.json" \
    > "$dir/files.txt"
while read -r wheel; do
    [ -s "$dir/$wheel" ] || get "wheelhouse/$wheelhouse/$wheel" "$dir/$wheel"
done < "$dir/files.txt"
phase wheelhouse-install
# uv from its own wheel (a zip): the binary is its data/scripts/uv.
python3 - "$dir" <<'UV'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("uv-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    member = next(n for n in archive.namelist() if n.endswith(".data/scripts/uv"))
    target = pathlib.Path("/usr/local/bin/uv")
    target.write_bytes(archive.read(member))
    target.chmod(0o755)
UV
export UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never
[ -x "$VENV/bin/python" ] || uv venv --quiet --python /usr/bin/python3 "$VENV"
uv pip install --quiet --python "$VENV/bin/python" --offline --no-index --find-links "$dir" \
    --require-hashes -r "$dir/requirements.txt"
phase boot
exec "$VENV/bin/python" -m deploy.vm.boot __SETTINGS__
"""


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
    script = _SCRIPT
    for marker, value in values.items():
        script = script.replace(marker, value)
    return script


def log_group_name(platform: str) -> str:
    """The platform's log group (modules.aws.logging creates it)."""
    return f"/graticule/{platform}"


def terraform_literal(text: str) -> str:
    """`text` as a Terraform string literal: the shell's `${...}` and `%{` are not templates."""
    return text.replace("${", "$${").replace("%{", "%%{")

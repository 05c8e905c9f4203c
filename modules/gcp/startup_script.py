"""The hub VM's startup script on GCP: a plain POSIX sh script, rendered once per platform,
the counterpart of AWS's user data (modules.aws.user_data).

It holds no secret and nothing that changes with users, groups, profiles or budgets (a
platform.yaml change must never touch the hub): only the platform's name, project,
region, artifacts bucket and log name. GCE runs a startup script at every boot, so each
step is idempotent: it writes /etc/graticule/vm.json, takes the service account's token
from the metadata server, waits for `config/current.json` in the artifacts bucket
(`platform apply` writes it after Terraform), downloads the wheelhouse it names through
Cloud Storage's JSON API with that token (no gcloud on the image, no internet: Private
Google Access is enough), takes uv out of the uv wheel, installs graticule and its pinned
dependencies offline with hashes required, then hands over to `deploy.vm.boot`.

Google's endpoints are the default ones; a test's stand-in for Private Google Access
names others in /etc/graticule/google-endpoints.json, which the script and the VM's
Python code read when it exists.
"""

from __future__ import annotations

import json

from modules import naming
from modules.hub_boot_script import VENV, WHEELHOUSE, fill

GOOGLE_ENDPOINTS = "/etc/graticule/google-endpoints.json"
METADATA = "http://169.254.169.254/computeMetadata/v1"  # metadata.google.internal, without DNS

_SCRIPT = r"""#!/bin/sh
# graticule hub VM, at every boot. Rendered by `platform render`: edit platform.yaml, not this.
set -eu
umask 077
BUCKET=__BUCKET__
VENV=__VENV__
WHEELHOUSE=__WHEELHOUSE__
METADATA=__METADATA__
ENDPOINTS=__ENDPOINTS__
AUTH=/run/graticule-authorization
mkdir -p /etc/graticule /var/log/graticule "$WHEELHOUSE"
cat > __SETTINGS__ <<'VMJSON'
__VMJSON__
VMJSON
__HELPERS__phase startup-script
quoted() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
# Cloud Storage's JSON API: Google's, or the address a test's stand-in gives.
STORAGE=https://storage.googleapis.com
if [ -s "$ENDPOINTS" ]; then STORAGE=$(field "$ENDPOINTS" storage); fi
STORAGE=${STORAGE%/}
# The service account's access token, as a header file (never on a command line).
token() {
    curl -fsS -H "Metadata-Flavor: Google" "$METADATA/instance/service-accounts/default/token" \
        -o /run/graticule-token.json || return 1
    printf 'Authorization: Bearer %s\n' "$(field /run/graticule-token.json access_token)" > "$AUTH"
    rm -f /run/graticule-token.json
}
# fetch KEY FILE [CURL OPTIONS]: one object of the artifacts bucket.
fetch() {
    key=$1 file=$2
    shift 2
    curl -fsS "$@" -o "$file" -H "@$AUTH" "$STORAGE/storage/v1/b/$BUCKET/o/$(quoted "$key")?alt=media"
}
get() { fetch "$1" "$2" --retry 5 --retry-all-errors; }
# the metadata server answers once the guest's network is up
until token 2>/dev/null; do echo "graticule: waiting for the service account's token"; sleep 2; done
# `platform apply` publishes the configuration after Terraform made this instance.
until fetch config/current.json /run/graticule-current.json 2>/dev/null; do
    echo "graticule: waiting for config/current.json in gs://$BUCKET"
    sleep 3
    until token 2>/dev/null; do sleep 2; done
done
downloaded() { rm -f "$AUTH"; }  # the token is not needed past the download
__INSTALL_AND_BOOT__"""


def vm_settings(platform: str, project: str, region: str, bucket: str, log_name: str) -> dict[str, str]:
    """The contents of /etc/graticule/vm.json on a GCP hub."""
    return {
        "cloud": "gcp",
        "platform": platform,
        "project": project,
        "region": region,
        "bucket": bucket,
        "log_group": log_name,
        "state_dir": naming.HUB_STATE_DIR,
        "state_device": naming.GCP_STATE_DEVICE,
    }


def log_name(platform: str) -> str:
    """The Cloud Logging log the hub's components would write to (see deploy.vm.gcp_stores)."""
    return f"graticule-{platform}"


def hub_startup_script(platform: str, project: str, region: str) -> str:
    """The script, the same bytes for the same three values."""
    bucket = naming.gcp_artifacts_bucket(platform, project)
    settings = json.dumps(vm_settings(platform, project, region, bucket, log_name(platform)), sort_keys=True)
    values = {
        "__BUCKET__": bucket, "__VENV__": VENV, "__WHEELHOUSE__": WHEELHOUSE, "__METADATA__": METADATA,
        "__ENDPOINTS__": GOOGLE_ENDPOINTS, "__SETTINGS__": naming.VM_SETTINGS, "__VMJSON__": settings,
    }
    return fill(_SCRIPT, values)

"""The startup script of a launched GCP machine (Dask scheduler or worker, notebook server):
a POSIX sh script with no secret in it, the counterpart of AWS's user data
(`deploy.cloud.machine_boot`), built by `deploy.cloud.machine_boot_script` from the same steps
with GCP's own:

- Cloud Storage: the service account's access token from the metadata server, the artifacts
  bucket through Cloud Storage's JSON API (Private Google Access; a test's stand-in is named
  in /etc/graticule/google-endpoints.json), as the hub's startup script does;
- the secret: an instance identity token (`identity?audience=AUD&format=full`) shown to the
  hub's machine-secret broker (`deploy.gateway.machine_secret_broker`), retried while it
  answers 403 (the gateway allows the machine just after launching it);
- `GRATICULE_MACHINE_ID` (the instance's name: the machines layer's id on GCP) exported for
  the worker launcher (`deploy.gateway.vm_worker_launcher`); the access token is removed
  once the downloads are done.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from deploy.cloud.machine_boot_script import CloudSteps, boot_script
from deploy.runtime import env as contract
from modules import naming

BROKER_ROUTE = "/graticule/v1/machine-secret/"  # under the gateway's API URL
METADATA = "http://169.254.169.254"  # metadata.google.internal, without DNS
ENDPOINTS = "/etc/graticule/google-endpoints.json"  # deploy.cloud.google_clients.VM_ENDPOINTS


@dataclass(frozen=True)
class GcpMachineBoot:
    platform: str
    bucket: str  # the artifacts bucket
    api_url: str  # the gateway's API as the machines reach it (the broker is under it)
    secret: str  # the machine secret's key (`cluster-<name>`)
    command: list[str]  # run last (exec), with env applied
    environment: str | None = None  # the environment's wheel-cache key (build_key); None: none
    env: Mapping[str, str] = field(default_factory=dict)  # non-secret environment
    platform_software: bool = False  # also install the hub's wheelhouse


_SETTINGS = """BUCKET=__BUCKET__
BROKER=__BROKER__
AUDIENCE=__AUDIENCE__
"""

_SERVICES = """METADATA=${__IMDS_URL__:-__METADATA__}/computeMetadata/v1
ENDPOINTS=${__GOOGLE_ENDPOINTS__:-__ENDPOINTS__}
"""

_ACCESS = r"""AUTH="$RUN/authorization"
quoted() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
STORAGE=https://storage.googleapis.com
if [ -s "$ENDPOINTS" ]; then STORAGE=$(field "$ENDPOINTS" storage); fi
STORAGE=${STORAGE%/}
metadata() { curl -fsS -H "Metadata-Flavor: Google" "$METADATA/$1"; }
token() {  # the service account's access token, as a header file (never on a command line)
    metadata instance/service-accounts/default/token > "$RUN/token.json" || return 1
    printf 'Authorization: Bearer %s\n' "$(field "$RUN/token.json" access_token)" > "$AUTH"
    rm -f "$RUN/token.json"
}
object_url() { echo "$STORAGE/storage/v1/b/$BUCKET/o/$(quoted "$1")?alt=media"; }
fetch() {  # [CURL OPTIONS]: from the artifacts bucket
    curl -fsS -H "@$AUTH" "$@"
}
read_secret() {  # the broker's answer for this instance's identity token; prints the HTTP status
    metadata "instance/service-accounts/default/identity?audience=$AUDIENCE&format=full" > "$RUN/identity" \
        || { echo 000; return 0; }
    printf 'Authorization: Bearer %s\n' "$(cat "$RUN/identity")" > "$RUN/identity.header"
    rm -f "$RUN/identity"
    curl -sS -o "$RUN/secret.json" -w '%{http_code}' -H "@$RUN/identity.header" "$BROKER" || echo 000
    rm -f "$RUN/identity.header"
}
until MACHINE_ID=$(metadata instance/name) && token 2>/dev/null; do
    echo "graticule: waiting for the metadata server"; sleep 1
done
phase secret
# Refused (403) until the platform allows this instance, just after launching it.
tries=0
while status=$(read_secret) && [ "$status" != 200 ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { echo "graticule: machine secret unreadable after $tries tries ($status)" >&2; exit 1; }
    case "$status" in 401|404) echo "graticule: the broker refused the machine secret ($status)" >&2 ;; esac
    sleep 1
done
"""


def broker_url(api_url: str, key: str) -> str:
    return api_url.rstrip("/") + BROKER_ROUTE + key


def gcp_machine_startup_script(boot: GcpMachineBoot) -> str:
    """The script: the same bytes for the same GcpMachineBoot."""
    steps = CloudSteps(
        cloud="gcp", settings=_SETTINGS, services=_SERVICES, access=_ACCESS,
        secret_document="json.load(open(answer))",
        after_install='rm -f "$AUTH"  # the token is not needed past the downloads\n',
        exports=f' {contract.MACHINE_ID}="$MACHINE_ID"',
        values={
            "__BUCKET__": shlex.quote(boot.bucket),
            "__BROKER__": shlex.quote(broker_url(boot.api_url, boot.secret)),
            "__AUDIENCE__": shlex.quote(naming.machine_secrets_audience(boot.platform)),
            "__IMDS_URL__": contract.IMDS_URL, "__METADATA__": METADATA,
            "__GOOGLE_ENDPOINTS__": contract.GOOGLE_ENDPOINTS, "__ENDPOINTS__": ENDPOINTS,
        },
    )
    return boot_script(steps, boot.command, environment=boot.environment, env=boot.env,
                       platform_software=boot.platform_software)

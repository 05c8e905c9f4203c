"""The startup script of a launched GCP machine (Dask scheduler or worker, notebook server):
a POSIX sh script with no secret in it, the counterpart of AWS's user data
(`deploy.cloud.machine_boot`), with the same steps and the same layout on the machine.

- Cloud Storage: the service account's access token from the metadata server, the artifacts
  bucket through Cloud Storage's JSON API (Private Google Access; a test's stand-in is named
  in /etc/graticule/google-endpoints.json), as the hub's startup script does;
- the secret: an instance identity token (`identity?audience=AUD&format=full`) shown to the
  hub's machine-secret broker (`deploy.gateway.machine_secret_broker`), retried while it
  answers 403 (the gateway allows the machine just after launching it); its files are
  written 0600, its environment exported;
- the software: the environment's wheels under `environments/<key>/` (or the platform's own
  wheelhouse), installed offline with uv, hashes required, skipped when installed already;
- `GRATICULE_MACHINE_ID` (the instance's name: the machines layer's id on GCP) exported for
  the worker launcher (`deploy.gateway.vm_worker_launcher`), then `command` exec'd, an
  argument equal to `PYTHON` replaced by the installed Python.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from deploy.cloud.machine_boot import CACHE_DIR, ENVS_DIR, PLATFORM_VENV, PYTHON, WORKDIR
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


_SCRIPT = r"""#!/bin/sh
# graticule machine boot (gcp), written by the platform for this one machine: no secret in it.
set -eu
umask 077
BUCKET=__BUCKET__
BROKER=__BROKER__
AUDIENCE=__AUDIENCE__
ENVIRONMENT=__ENVIRONMENT__
PLATFORM_SOFTWARE=__PLATFORM_SOFTWARE__
# Tests run this outside a VM: a root to write under, a metadata server and endpoints of their own.
ROOT=${__MACHINE_ROOT__:-}
METADATA=${__IMDS_URL__:-__METADATA__}/computeMetadata/v1
ENDPOINTS=${__GOOGLE_ENDPOINTS__:-__ENDPOINTS__}
WORKDIR="$ROOT"__WORKDIR__
CACHE="$ROOT"__CACHE__
RUN="$ROOT/run/graticule-machine"
mkdir -p "$WORKDIR" "$CACHE" "$RUN"
AUTH="$RUN/authorization"
phase() { echo "graticule-phase $1 $(date +%s.%N)"; }
phase user-data
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
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
s3_url() { echo "$STORAGE/storage/v1/b/$BUCKET/o/$(quoted "$1")?alt=media"; }
get() {  # KEY FILE: one object of the artifacts bucket
    curl -fsS --retry 5 --retry-all-errors -H "@$AUTH" -o "$2" "$(s3_url "$1")"
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
python3 - "$RUN/secret.json" "$WORKDIR" "$ROOT" "$RUN/env.sh" <<'APPLY'
import json, os, shlex, sys
answer, workdir, root, env_file = sys.argv[1:]
secret = json.load(open(answer))
for path, content in secret.get("files", {}).items():
    target = root + path if path.startswith("/") else os.path.join(workdir, path)
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
with open(env_file, "w") as handle:
    handle.writelines(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(secret.get("env", {}).items()))
APPLY
rm -f "$RUN/secret.json"
. "$RUN/env.sh"
rm -f "$RUN/env.sh"
fetch_wheels() {  # PREFIX DIR: requirements.txt, index.json and the wheels it lists
    mkdir -p "$2"
    get "$1/requirements.txt" "$2/requirements.txt"
    get "$1/index.json" "$2/index.json"
    python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["files"]))' "$2/index.json" \
        > "$2/files.txt"
    # the missing wheels, 8 transfers at a time (one curl)
    : > "$RUN/transfers"
    while read -r wheel; do
        [ -s "$2/$wheel" ] || printf 'url = "%s"\noutput = "%s"\n' "$(s3_url "$1/$wheel")" "$2/$wheel" \
            >> "$RUN/transfers"
    done < "$2/files.txt"
    [ ! -s "$RUN/transfers" ] || curl -fsS --parallel --parallel-max 8 --retry 5 --retry-all-errors \
        -H "@$AUTH" -K "$RUN/transfers"
    rm -f "$RUN/transfers"
}
wheelhouse=""
hub_wheelhouse() {
    if [ -z "$wheelhouse" ]; then
        get config/current.json "$RUN/current.json"
        wheelhouse=$(field "$RUN/current.json" wheelhouse)
    fi
}
UV=$(command -v uv || true)
need_uv() {
    [ -z "$UV" ] || return 0
    hub_wheelhouse
    get "wheelhouse/$wheelhouse/index.json" "$RUN/wheelhouse-index.json"
    name=$(python3 -c 'import json,sys; print([f for f in json.load(open(sys.argv[1]))["files"]
        if f.startswith("uv-")][0])' "$RUN/wheelhouse-index.json")
    get "wheelhouse/$wheelhouse/$name" "$RUN/$name"
    python3 - "$RUN/$name" "$RUN/uv" <<'UV'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    member = next(n for n in archive.namelist() if n.endswith(".data/scripts/uv"))
    open(sys.argv[2], "wb").write(archive.read(member))
UV
    chmod 755 "$RUN/uv"
    UV="$RUN/uv"
}
install() {  # PREFIX VENV: the wheels under PREFIX, offline, hashes required, once
    [ -f "$2/.graticule-installed" ] && return 0
    dir="$CACHE/$(echo "$1" | tr / _)"
    fetch_wheels "$1" "$dir"
    need_uv
    phase uv-install
    export UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never
    [ -x "$2/bin/python" ] || "$UV" venv --quiet --python "$(command -v python3)" "$2"
    "$UV" pip install --quiet --python "$2/bin/python" --offline --no-index --find-links "$dir" \
        --require-hashes -r "$dir/requirements.txt"
    touch "$2/.graticule-installed"
}
PYTHON=$(command -v python3)
if [ "$PLATFORM_SOFTWARE" = 1 ]; then
    phase platform-install
    hub_wheelhouse
    install "wheelhouse/$wheelhouse" "$ROOT"__PLATFORM_VENV__
    PYTHON="$ROOT"__PLATFORM_VENV__/bin/python
fi
if [ -n "$ENVIRONMENT" ]; then
    phase environment-install
    install "__ENV_PREFIX__" "$ROOT__ENVS__/$ENVIRONMENT"
    PYTHON="$ROOT__ENVS__/$ENVIRONMENT/bin/python"
fi
rm -f "$AUTH"  # the token is not needed past the downloads
export __MACHINE_PYTHON__="$PYTHON" __MACHINE_ID__="$MACHINE_ID"
__EXPORTS__cd "$WORKDIR"
phase command
exec __COMMAND__
"""


def _word(argument: str) -> str:
    return '"$PYTHON"' if argument == PYTHON else shlex.quote(argument)


def broker_url(api_url: str, key: str) -> str:
    return api_url.rstrip("/") + BROKER_ROUTE + key


def gcp_machine_startup_script(boot: GcpMachineBoot) -> str:
    """The script: the same bytes for the same GcpMachineBoot."""
    if not boot.command:
        raise ValueError("a machine needs a command to run")
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in sorted(boot.env.items()))
    values = {
        "__BUCKET__": shlex.quote(boot.bucket),
        "__BROKER__": shlex.quote(broker_url(boot.api_url, boot.secret)),
        "__AUDIENCE__": shlex.quote(naming.machine_secrets_audience(boot.platform)),
        "__ENVIRONMENT__": shlex.quote(boot.environment or ""),
        "__PLATFORM_SOFTWARE__": "1" if boot.platform_software else "0",
        "__ENV_PREFIX__": naming.environment_prefix("$ENVIRONMENT"),
        "__WORKDIR__": WORKDIR, "__CACHE__": CACHE_DIR, "__PLATFORM_VENV__": PLATFORM_VENV,
        "$ROOT__ENVS__": "${ROOT}" + ENVS_DIR,
        "__EXPORTS__": exports,
        "__MACHINE_ROOT__": contract.MACHINE_ROOT, "__IMDS_URL__": contract.IMDS_URL,
        "__GOOGLE_ENDPOINTS__": contract.GOOGLE_ENDPOINTS, "__METADATA__": METADATA, "__ENDPOINTS__": ENDPOINTS,
        "__MACHINE_PYTHON__": contract.MACHINE_PYTHON, "__MACHINE_ID__": contract.MACHINE_ID,
        "__COMMAND__": " ".join(_word(argument) for argument in boot.command),
    }
    script = _SCRIPT
    for marker, value in values.items():
        script = script.replace(marker, value)
    return script

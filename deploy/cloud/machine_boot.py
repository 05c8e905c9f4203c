"""User data of a launched machine (Dask scheduler or worker, notebook server): a POSIX sh
script with no secret in it.

Like the hub's (`modules/aws/user_data.py`): the instance role's credentials from IMDSv2,
curl's SigV4 signing, nothing but the VPC endpoints needed (`egress: none`). It reads the
machine's secret from Secrets Manager (retrying while access is denied: the gateway
`allow`s the machine just after launching it), writes the secret's files 0600 and exports
its environment, installs the machine's software offline with uv and hashes required
(skipped when already installed), then execs `command`:

- the environment (`environment`, a lock entry's `build_key`): the wheels under
  `environments/<key>/` of the artifacts bucket (`deploy.vm.publish.publish_environment`
  puts them there), into `/opt/graticule/envs/<key>`. Its dask, distributed and dask-gateway are the
  platform's own versions (render.environments.PLATFORM_PINS are in every environment),
  so the Dask commands run from it;
- the platform's own software (`platform_software`, e.g. jupyterhub's single-user server):
  the hub's wheelhouse (`wheelhouse/<id>/`, named by `config/current.json`) into
  `/opt/graticule/venv`, the hub's way.

uv is the image's when it has one, else taken out of the hub wheelhouse's uv wheel. An
argument of `command` equal to `PYTHON` is replaced by the Python that was installed
(the environment's, else the platform's, else the image's python3).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from deploy.runtime import env as contract
from modules import naming

PYTHON = "@python"  # in `command`: the machine's installed Python
WORKDIR = "/var/lib/graticule/machine"  # the command's working directory; relative secret files land here
ENVS_DIR = "/opt/graticule/envs"
PLATFORM_VENV = "/opt/graticule/venv"
CACHE_DIR = "/opt/graticule/wheels"


@dataclass(frozen=True)
class MachineBoot:
    platform: str
    region: str
    bucket: str  # the artifacts bucket
    secret: str  # the secret's name: its JSON is {"env": {...}, "files": {path: content}}
    command: list[str]  # run last (exec), with env applied
    environment: str | None = None  # the environment's wheel-cache key (build_key); None: none
    env: Mapping[str, str] = field(default_factory=dict)  # non-secret environment
    platform_software: bool = False  # also install the hub's wheelhouse (graticule[platform,aws])


_SCRIPT = r"""#!/bin/sh
# graticule machine boot, written by the platform for this one machine: no secret in it.
set -eu
umask 077
REGION=__REGION__
BUCKET=__BUCKET__
SECRET=__SECRET__
ENVIRONMENT=__ENVIRONMENT__
PLATFORM_SOFTWARE=__PLATFORM_SOFTWARE__
# Tests run this outside a VM: a root to write under and a metadata service of their own.
ROOT=${__MACHINE_ROOT__:-}
IMDS=${__IMDS_URL__:-http://169.254.169.254}
WORKDIR="$ROOT"__WORKDIR__
CACHE="$ROOT"__CACHE__
RUN="$ROOT/run/graticule-machine"
export AWS_DEFAULT_REGION="$REGION" AWS_REGION="$REGION"
mkdir -p "$WORKDIR" "$CACHE" "$RUN"
phase() { echo "graticule-phase $1 $(date +%s.%N)"; }
phase user-data
if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
    s3_url() { echo "${AWS_ENDPOINT_URL%/}/$BUCKET/$1"; }
    secrets_url="${AWS_ENDPOINT_URL%/}/"
else
    s3_url() { echo "https://$BUCKET.s3.$REGION.amazonaws.com/$1"; }
    secrets_url="https://secretsmanager.$REGION.amazonaws.com/"
fi
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
credentials() {
    token=$(curl -fsS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 3600" "$IMDS/latest/api/token") || return 1
    imds="$IMDS/latest/meta-data/iam/security-credentials"
    role=$(curl -fsS -H "X-aws-ec2-metadata-token: $token" "$imds/") || return 1
    role=$(echo "$role" | head -n 1)
    curl -fsS -H "X-aws-ec2-metadata-token: $token" "$imds/$role" > "$RUN/credentials.json" || return 1
    KEY_ID=$(field "$RUN/credentials.json" AccessKeyId)
    SECRET_KEY=$(field "$RUN/credentials.json" SecretAccessKey)
    SESSION=$(field "$RUN/credentials.json" Token)
    rm -f "$RUN/credentials.json"
}
signed() {  # SERVICE [CURL OPTIONS]
    service=$1
    shift
    curl -fsS --aws-sigv4 "aws:amz:$REGION:$service" --user "$KEY_ID:$SECRET_KEY" \
        -H "x-amz-security-token: $SESSION" "$@"
}
get() {  # KEY FILE: one object of the artifacts bucket
    signed s3 --retry 5 --retry-all-errors -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o "$2" "$(s3_url "$1")"
}
read_secret() {
    signed secretsmanager -X POST -H "X-Amz-Target: secretsmanager.GetSecretValue" \
        -H "Content-Type: application/x-amz-json-1.1" --data "{\"SecretId\": \"$SECRET\"}" \
        -o "$RUN/secret.json" "$secrets_url"
}
until credentials 2>/dev/null; do echo "graticule: waiting for the instance role"; sleep 1; done
phase secret
# Denied until the platform allows this instance, just after launching it.
tries=0
until read_secret 2>/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { echo "graticule: secret $SECRET unreadable after $tries tries" >&2; exit 1; }
    sleep 1
    credentials 2>/dev/null || true
done
python3 - "$RUN/secret.json" "$WORKDIR" "$ROOT" "$RUN/env.sh" <<'APPLY'
import json, os, shlex, sys
answer, workdir, root, env_file = sys.argv[1:]
secret = json.loads(json.load(open(answer))["SecretString"])
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
    # the missing wheels, 8 transfers at a time (one curl, each transfer signed on its own)
    : > "$RUN/transfers"
    while read -r wheel; do
        [ -s "$2/$wheel" ] || printf 'url = "%s"\noutput = "%s"\n' "$(s3_url "$1/$wheel")" "$2/$wheel" \
            >> "$RUN/transfers"
    done < "$2/files.txt"
    [ ! -s "$RUN/transfers" ] || signed s3 --parallel --parallel-max 8 --retry 5 --retry-all-errors \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -K "$RUN/transfers"
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
export __MACHINE_PYTHON__="$PYTHON"
__EXPORTS__cd "$WORKDIR"
phase command
exec __COMMAND__
"""


def _word(argument: str) -> str:
    return '"$PYTHON"' if argument == PYTHON else shlex.quote(argument)


def machine_user_data(boot: MachineBoot) -> str:
    """The script: the same bytes for the same MachineBoot."""
    if not boot.command:
        raise ValueError("a machine needs a command to run")
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in sorted(boot.env.items()))
    values = {
        "__REGION__": shlex.quote(boot.region),
        "__BUCKET__": shlex.quote(boot.bucket),
        "__SECRET__": shlex.quote(boot.secret),
        "__ENVIRONMENT__": shlex.quote(boot.environment or ""),
        "__PLATFORM_SOFTWARE__": "1" if boot.platform_software else "0",
        "__ENV_PREFIX__": naming.environment_prefix("$ENVIRONMENT"),
        "__WORKDIR__": WORKDIR, "__CACHE__": CACHE_DIR, "__PLATFORM_VENV__": PLATFORM_VENV,
        "$ROOT__ENVS__": "${ROOT}" + ENVS_DIR,
        "__EXPORTS__": exports,
        "__MACHINE_ROOT__": contract.MACHINE_ROOT, "__IMDS_URL__": contract.IMDS_URL,
        "__MACHINE_PYTHON__": contract.MACHINE_PYTHON,
        "__COMMAND__": " ".join(_word(argument) for argument in boot.command),
    }
    script = _SCRIPT
    for marker, value in values.items():
        script = script.replace(marker, value)
    return script

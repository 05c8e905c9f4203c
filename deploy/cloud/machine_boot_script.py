"""The boot script of a launched machine (Dask scheduler or worker, notebook server), for
every cloud: a POSIX sh script with no secret in it. The steps are the same on each cloud
and written here once; a cloud gives only what differs (`CloudSteps`): how the machine
proves who it is (metadata token, signed requests), how it fetches an object of the
artifacts bucket and how it fetches its secret.

The shared steps: the machine's secret (left by the cloud's step in `$RUN/secret.json`)
has its files written 0600 and its environment exported; the machine's software is
installed offline with uv, hashes required, skipped when already installed:

- the environment (a lock entry's `build_key`): the wheels under `environments/<key>/` of
  the artifacts bucket (`deploy.vm.publish.publish_environment` puts them there), into
  `/opt/graticule/envs/<key>`. Its dask, distributed and dask-gateway are the platform's own
  versions (render.environments.PLATFORM_PINS are in every environment), so the Dask
  commands run from it;
- the platform's own software (`platform_software`, e.g. jupyterhub's single-user server):
  the hub's wheelhouse (`wheelhouse/<id>/`, named by `config/current.json`) into
  `/opt/graticule/venv`, the hub's way.

uv is the image's when it has one, else taken out of the hub wheelhouse's uv wheel. Last,
`command` is exec'd; an argument equal to `PYTHON` is replaced by the Python that was
installed (the environment's, else the platform's, else the image's python3).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from deploy.runtime import env as contract
from modules import naming

PYTHON = "@python"  # in `command`: the machine's installed Python
WORKDIR = "/var/lib/graticule/machine"  # the command's working directory; relative secret files land here
ENVS_DIR = "/opt/graticule/envs"
PLATFORM_VENV = "/opt/graticule/venv"
CACHE_DIR = "/opt/graticule/wheels"


@dataclass(frozen=True)
class CloudSteps:
    """One cloud's fragments of the boot script (POSIX sh; `values` fills their markers)."""
    cloud: str  # named in the script's first comment ("" for none)
    settings: str  # this machine's shell variables (BUCKET, where its secret is), set first
    services: str  # after ROOT: where the cloud's services answer (tests name their own)
    # Defines `object_url KEY` and `fetch CURL-OPTIONS` (curl, authorized to read the artifacts
    # bucket), waits for the machine's credentials, then waits for its secret and leaves it in
    # "$RUN/secret.json".
    access: str
    secret_document: str  # Python: the secret's {"env", "files"} from `answer`, that file's path
    after_install: str = ""  # whole lines (each ending in a newline) run once the downloads are done
    exports: str = ""  # more ` NAME="$VALUE"` pairs exported for the command (no markers)
    values: Mapping[str, str] = field(default_factory=dict)  # marker -> text, in the fragments


_HEAD = r"""#!/bin/sh
# graticule machine boot__CLOUD__, written by the platform for this one machine: no secret in it.
set -eu
umask 077
"""

_LAYOUT = r"""ENVIRONMENT=__ENVIRONMENT__
PLATFORM_SOFTWARE=__PLATFORM_SOFTWARE__
# Tests run this outside a VM: a root to write under and the cloud's services of their own.
ROOT=${__MACHINE_ROOT__:-}
"""

_RUN = r"""WORKDIR="$ROOT"__WORKDIR__
CACHE="$ROOT"__CACHE__
RUN="$ROOT/run/graticule-machine"
mkdir -p "$WORKDIR" "$CACHE" "$RUN"
phase() { echo "graticule-phase $1 $(date +%s.%N)"; }
phase user-data
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
"""

_INSTALL = r"""python3 - "$RUN/secret.json" "$WORKDIR" "$ROOT" "$RUN/env.sh" <<'APPLY'
import json, os, shlex, sys
answer, workdir, root, env_file = sys.argv[1:]
secret = __SECRET_DOCUMENT__
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
# shellcheck source=/dev/null
. "$RUN/env.sh"
rm -f "$RUN/env.sh"
get() {  # KEY FILE: one object of the artifacts bucket
    fetch --retry 5 --retry-all-errors -o "$2" "$(object_url "$1")"
}
fetch_wheels() {  # PREFIX DIR: requirements.txt, index.json and the wheels it lists
    mkdir -p "$2"
    get "$1/requirements.txt" "$2/requirements.txt"
    get "$1/index.json" "$2/index.json"
    python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["files"]))' "$2/index.json" \
        > "$2/files.txt"
    # the missing wheels, 8 transfers at a time (one curl)
    : > "$RUN/transfers"
    while read -r wheel; do
        [ -s "$2/$wheel" ] || printf 'url = "%s"\noutput = "%s"\n' "$(object_url "$1/$wheel")" "$2/$wheel" \
            >> "$RUN/transfers"
    done < "$2/files.txt"
    [ ! -s "$RUN/transfers" ] || fetch --parallel --parallel-max 8 --retry 5 --retry-all-errors -K "$RUN/transfers"
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
"""

_COMMAND = r"""export __MACHINE_PYTHON__="$PYTHON"__MORE_EXPORTS__
__EXPORTS__cd "$WORKDIR"
phase command
exec __COMMAND__
"""


def _word(argument: str) -> str:
    return '"$PYTHON"' if argument == PYTHON else shlex.quote(argument)


def boot_script(cloud: CloudSteps, command: Sequence[str], *, environment: str | None = None,
                env: Mapping[str, str] | None = None, platform_software: bool = False) -> str:
    """The script: the same bytes for the same arguments. `environment` is the wheel-cache key
    to install (None: none); `env` the command's non-secret environment."""
    if not command:
        raise ValueError("a machine needs a command to run")
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in sorted((env or {}).items()))
    values = {
        **cloud.values,
        "__CLOUD__": f" ({cloud.cloud})" if cloud.cloud else "",
        "__ENVIRONMENT__": shlex.quote(environment or ""),
        "__PLATFORM_SOFTWARE__": "1" if platform_software else "0",
        "__SECRET_DOCUMENT__": cloud.secret_document,
        "__ENV_PREFIX__": naming.environment_prefix("$ENVIRONMENT"),
        "__WORKDIR__": WORKDIR, "__CACHE__": CACHE_DIR, "__PLATFORM_VENV__": PLATFORM_VENV,
        "$ROOT__ENVS__": "${ROOT}" + ENVS_DIR,
        "__MACHINE_ROOT__": contract.MACHINE_ROOT, "__MACHINE_PYTHON__": contract.MACHINE_PYTHON,
        "__MORE_EXPORTS__": cloud.exports,
        "__EXPORTS__": exports,
        "__COMMAND__": " ".join(_word(argument) for argument in command),
    }
    text = (_HEAD + cloud.settings + _LAYOUT + cloud.services + _RUN + cloud.access + _INSTALL
            + cloud.after_install + _COMMAND)
    # One pass: a value (a command, an environment value) is never searched for markers again.
    markers = re.compile("|".join(re.escape(marker) for marker in sorted(values, key=len, reverse=True)))
    return markers.sub(lambda found: values[found.group(0)], text)

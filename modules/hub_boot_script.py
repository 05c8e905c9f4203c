"""What the hub VM's first-boot script does the same on every cloud: the shell helpers,
then, once the cloud's part has fetched `config/current.json`, the wheelhouse it names
downloaded, uv taken out of its own wheel, graticule installed offline with hashes
required, and the hand-over to `deploy.vm.boot`.

A cloud's script (modules.aws.user_data, modules.gcp.startup_script) defines `get KEY
FILE` (one object of the artifacts bucket, with retries) and `downloaded` (what to do once
the wheelhouse is on disk: drop a token, say), then places these fragments around its own.
"""

from __future__ import annotations

from collections.abc import Mapping

VENV = "/opt/graticule/venv"
WHEELHOUSE = "/opt/graticule/wheelhouse"

HELPERS = r"""phase() { echo "graticule-phase $1 $(date +%s.%N)"; }
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
"""

INSTALL_AND_BOOT = r"""wheelhouse=$(field /run/graticule-current.json wheelhouse)
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
downloaded
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


def fill(template: str, values: Mapping[str, str]) -> str:
    """`template` with each `__MARKER__` replaced, the fragments first (they carry markers too)."""
    script = template.replace("__HELPERS__", HELPERS).replace("__INSTALL_AND_BOOT__", INSTALL_AND_BOOT)
    for marker, value in values.items():
        script = script.replace(marker, value)
    return script

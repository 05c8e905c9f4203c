"""A launched machine's user data (deploy.vm.machine_boot), run for real: the POSIX sh
script on this host (as root under a scratch root directory, `GRATICULE_MACHINE_ROOT`),
against a real moto server (Secrets Manager, S3) and the simulator's IMDSv2 stand-in on
127.0.0.1. It reads the machine's secret (retrying while it is missing), writes its files
0600, exports its environment, installs the environment from the bucket's wheel cache with
uv (offline, hashes required) and execs the command with the environment's Python; a second
run finds the environment installed and skips the install.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from deploy.cloud.machine_secrets import MachineSecrets
from deploy.vm import publish
from deploy.vm.machine_boot import ENVS_DIR, PYTHON, WORKDIR, MachineBoot, machine_user_data
from deploy.vm.stores import S3Objects
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.simulator.imds import InstanceMetadata, MetadataServer, fallback_credentials
from tests.support.wheelhouse import six_environment

BUCKET = "oceanlab-artifacts-123456789012"
PROBE = (
    "import os, sys, six; "
    "print('python', sys.executable); print('six', six.__file__); "
    "print('token', os.environ['DASK_GATEWAY_API_TOKEN']); print('plain', os.environ['PLAIN']); "
    "print('key', open('dask.pem').read())"
)


@pytest.fixture
def imds_url():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    metadata_ = InstanceMetadata({"instance-id": "i-0123"}, b"", {}, "machines", fallback_credentials)
    server = MetadataServer(listener, metadata_).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.stop()


def _run(script: Path, root: Path, moto, imds_url: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**moto.env(), "PATH": path or os.environ["PATH"], "HOME": str(root),
           "GRATICULE_MACHINE_ROOT": str(root), "GRATICULE_IMDS_URL": imds_url}
    return subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=300)


def _publish_uv(s3) -> None:
    """A hub wheelhouse holding uv's wheel (the only part a machine without uv takes from it)."""
    from tests.support.hub_wheelhouse import hub_wheels

    wheel = next(hub_wheels().glob("uv-*.whl"))
    s3.upload_file(str(wheel), BUCKET, f"wheelhouse/w1/{wheel.name}")
    s3.put_object(Bucket=BUCKET, Key="wheelhouse/w1/index.json", Body=json.dumps({"files": [wheel.name]}))
    s3.put_object(Bucket=BUCKET, Key="config/current.json", Body=json.dumps({"version": "v", "wheelhouse": "w1"}))


# With uv on PATH (this host), and as on the machines' image: Debian's python3 and no uv, which
# then comes out of the hub wheelhouse's uv wheel.
@pytest.mark.parametrize("path", [None, "/usr/bin:/bin"], ids=["uv-on-path", "uv-from-the-wheelhouse"])
def test_the_script_reads_its_secret_installs_the_environment_and_runs(tmp_path, moto_server, imds_url,  # noqa: F811
                                                                       path):
    if path and (not Path("/usr/bin/python3").exists() or Path("/usr/bin/uv").exists()):
        pytest.skip("needs /usr/bin/python3 and no uv in /usr/bin")
    moto_server.reset()
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": moto_server.region})
    if path:
        _publish_uv(s3)
    key, wheels = six_environment(tmp_path)
    assert publish.publish_environment(S3Objects(s3, BUCKET), key, wheels) == 1
    assert publish.publish_environment(S3Objects(s3, BUCKET), key, wheels) == 0  # present: not again
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {f"environments/{key}/requirements.txt", f"environments/{key}/index.json"} <= listed

    secrets = MachineSecrets(moto_server.region, "oceanlab", client=moto_server.client("secretsmanager"))
    boot = MachineBoot(platform="oceanlab", region=moto_server.region, bucket=BUCKET,
                       secret=secrets.name("cluster-abc"), command=[PYTHON, "-c", PROBE], environment=key,
                       env={"PLAIN": "not a secret"})
    text = machine_user_data(boot)
    assert text == machine_user_data(boot) and text.startswith("#!/bin/sh\n")
    assert "tok-123" not in text and "PRIVATE" not in text
    script = tmp_path / "user-data.sh"
    script.write_text(text)
    root = tmp_path / "root"

    # The secret appears only after the machine started asking (as `allow` follows the launch).
    later = threading.Timer(2.0, secrets.put, ("cluster-abc", {
        "env": {"DASK_GATEWAY_API_TOKEN": "tok-123"}, "files": {"dask.pem": "PRIVATE KEY"}}))
    later.start()
    started = time.monotonic()
    try:
        first = _run(script, root, moto_server, imds_url, path)
    finally:
        later.cancel()
    assert first.returncode == 0, first.stdout + first.stderr
    assert time.monotonic() - started >= 2.0
    lines = dict(line.split(" ", 1) for line in first.stdout.splitlines() if " " in line)
    python = f"{root}{ENVS_DIR}/{key}/bin/python"
    assert lines["python"] == python
    assert lines["six"].startswith(f"{root}{ENVS_DIR}/{key}/")  # from the environment, not this host's
    assert (lines["token"], lines["plain"], lines["key"]) == ("tok-123", "not a secret", "PRIVATE KEY")
    assert stat.S_IMODE((root / WORKDIR.lstrip("/") / "dask.pem").stat().st_mode) == 0o600
    assert "graticule-phase environment-install" in first.stdout
    left = {path.name for path in (root / "run" / "graticule-machine").iterdir()}
    assert not left & {"secret.json", "env.sh", "credentials.json"}  # secret and credentials removed

    s3.delete_object(Bucket=BUCKET, Key=f"environments/{key}/index.json")  # a reinstall would now fail
    second = _run(script, root, moto_server, imds_url, path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "token tok-123" in second.stdout


def test_a_machine_without_its_secret_gives_up_with_a_message(tmp_path, moto_server, imds_url):  # noqa: F811
    boot = MachineBoot(platform="p", region=moto_server.region, bucket=BUCKET, secret="graticule/p/machines/none",
                       command=["true"])
    text = machine_user_data(boot).replace("-lt 300", "-lt 2")  # fewer tries than a machine makes
    script = tmp_path / "user-data.sh"
    script.write_text(text)
    result = _run(script, tmp_path / "root", moto_server, imds_url)
    assert result.returncode == 1
    assert "secret graticule/p/machines/none unreadable after 2 tries" in result.stderr


def test_no_command_is_refused():
    with pytest.raises(ValueError):
        machine_user_data(MachineBoot(platform="p", region="r", bucket="b", secret="s", command=[]))

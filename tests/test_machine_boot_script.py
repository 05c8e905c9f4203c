"""The one builder of machines' boot scripts (deploy.cloud.machine_boot_script) as both
clouds use it: AWS's user data and GCP's startup script are POSIX sh that shellcheck passes,
carry no credential, share every step but the cloud's own (how the machine proves who it
is, fetches an object, fetches its secret), and keep a command or environment value
verbatim even when it looks like one of the builder's markers.

The scripts run for real against moto and the GCP fakes in tests/test_machine_boot.py and
tests/test_gcp_machine_boot.py; here they are read as text.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from deploy.cloud.gcp_machine_boot import GcpMachineBoot, gcp_machine_startup_script
from deploy.cloud.machine_boot import MachineBoot, machine_user_data
from deploy.cloud.machine_boot_script import _INSTALL, _RUN, PYTHON, CloudSteps, boot_script

COMMAND = [PYTHON, "-m", "distributed.cli.dask_worker", "--name", "__COMMAND__ $ROOT__ENVS__ 'quoted'"]
SCHEDULER = [PYTHON, "-m", "distributed.cli.dask_scheduler", "--port", "8786"]  # as the gateway starts one
ENV = {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True", "PLAIN": "__EXPORTS__"}


def _aws(**overrides) -> str:
    return machine_user_data(MachineBoot(**{
        "platform": "oceanlab", "region": "us-west-2", "bucket": "oceanlab-artifacts",
        "secret": "graticule/oceanlab/machines/cluster-abc", "command": COMMAND, "environment": "k0123",
        "env": ENV, **overrides}))


def _gcp(**overrides) -> str:
    return gcp_machine_startup_script(GcpMachineBoot(**{
        "platform": "oceanlab", "bucket": "oceanlab-artifacts-proj", "api_url": "http://10.0.0.2:8000/api",
        "secret": "cluster-abc", "command": COMMAND, "environment": "k0123", "env": ENV, **overrides}))


SCRIPTS = {"aws": _aws, "gcp": _gcp}


@pytest.mark.parametrize("cloud", sorted(SCRIPTS))
@pytest.mark.parametrize("platform_software", [False, True])
def test_each_cloud_s_script_is_clean_posix_sh(cloud, platform_software):
    script = SCRIPTS[cloud](platform_software=platform_software, command=SCHEDULER)
    checked = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (scripts/test.sh installs it); sh -n passed")
    linted = subprocess.run(["shellcheck", "-s", "sh", "-"], input=script, capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout


@pytest.mark.parametrize("cloud", sorted(SCRIPTS))
def test_the_script_carries_its_values_verbatim_and_no_marker_or_credential(cloud):
    script = SCRIPTS[cloud]()
    assert script == SCRIPTS[cloud]()  # the same bytes for the same boot
    assert script.startswith("#!/bin/sh\n") and script.endswith(
        "exec \"$PYTHON\" " + shlex.join(COMMAND[1:]) + "\n")
    assert "export PLAIN=__EXPORTS__\n" in script  # a value that looks like a marker is left alone
    assert "ENVIRONMENT=k0123\n" in script and "PLATFORM_SOFTWARE=0\n" in script
    leftover = [line for line in script.splitlines() if "__" in line and "__EXPORTS__" not in line
                and "__COMMAND__" not in line and "DISTRIBUTED__COMM" not in line]
    assert leftover == []
    lowered = script.lower()
    assert "aws_secret_access_key" not in lowered and "private key" not in lowered
    assert "dask_gateway_api_token" not in lowered  # the cluster's token travels in the secret only


def test_both_clouds_share_every_step_but_their_own():
    aws, gcp = _aws(), _gcp()
    for shared in (_RUN, _INSTALL.replace("__SECRET_DOCUMENT__", "")):
        for line in shared.splitlines():
            if "__" in line or not line.strip():
                continue
            assert line in aws and line in gcp, line
    assert "--aws-sigv4" in aws and "--aws-sigv4" not in gcp
    assert "Metadata-Flavor: Google" in gcp and "Metadata-Flavor" not in aws
    assert "GRATICULE_MACHINE_ID=\"$MACHINE_ID\"" in gcp and "MACHINE_ID" not in aws
    assert aws.startswith("#!/bin/sh\n# graticule machine boot, ")
    assert gcp.startswith("#!/bin/sh\n# graticule machine boot (gcp), ")


def test_a_cloud_s_fragments_take_their_own_values():
    steps = CloudSteps(cloud="test", settings="ANSWER=__ANSWER__\n", services="", access=":\n",
                       secret_document="{}", after_install="echo done\n", exports=' EXTRA="$ANSWER"',
                       values={"__ANSWER__": "42"})
    script = boot_script(steps, ["true"], env={"A": "b"})
    assert "ANSWER=42\n" in script and 'export GRATICULE_PYTHON="$PYTHON" EXTRA="$ANSWER"\n' in script
    assert "echo done\nexport GRATICULE_PYTHON" in script
    assert "ENVIRONMENT=''\n" in script and script.endswith("exec true\n")
    with pytest.raises(ValueError, match="command"):
        boot_script(steps, [])

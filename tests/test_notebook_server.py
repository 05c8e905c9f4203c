"""What a notebook server's machine runs before the single-user server
(deploy.vm.notebook_server): the kernel of the user's environment, and the handover.

Real parts: a virtual environment made here (with this machine's site packages, so it has
ipykernel) stands in for the environment machine_boot installs; Jupyter's own kernel-spec
manager reads what was written. The home volume as the simulator presents it (a mount
point already there: tests/test_aws_notebook_e2e.py) is a tmpfs in a mount namespace of
the test's own.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from deploy.vm.notebook_server import environment_kernel


def test_a_kernel_for_the_users_environment_when_it_can_run_one(tmp_path):
    venv = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    kernels = tmp_path / "share" / "jupyter" / "kernels"
    made = environment_kernel(python, "ml", kernels)
    assert made == kernels / "graticule-ml"
    spec = KernelSpecManager(kernel_dirs=[str(kernels)]).get_kernel_spec("graticule-ml")
    assert spec.argv[0] == python and spec.display_name == "Python (ml)"
    assert spec.env == {"GRATICULE_ENVIRONMENT": "ml"}
    assert json.loads((made / "kernel.json").read_text())["argv"][1:3] == ["-m", "ipykernel_launcher"]


def test_no_kernel_without_an_environment_or_without_ipykernel(tmp_path):
    kernels = tmp_path / "kernels"
    assert environment_kernel(sys.executable, "ml", kernels) is None  # the platform's own Python
    assert environment_kernel("", "ml", kernels) is None
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)  # no ipykernel
    assert environment_kernel(str(bare / "bin" / "python"), "ml", kernels) is None
    assert environment_kernel(str(bare / "bin" / "python"), None, kernels) is None
    assert not kernels.exists()


def test_it_execs_the_server_in_the_mounted_home_made_private(tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare: the home is a tmpfs mounted in a mount namespace of its own")
    home = tmp_path / "home" / "alice"
    home.mkdir(parents=True)
    server = shlex.join([sys.executable, "-m", "deploy.vm.notebook_server", "--home", str(home), "--device",
                         "/dev/no-such-disk", "--timeout", "5", "--", sys.executable, "-c",
                         "import os, stat; print('cwd', os.getcwd(), oct(stat.S_IMODE(os.stat('.').st_mode)))"])
    script = f"mount -t tmpfs home {shlex.quote(str(home))} && {server}"
    done = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert f"graticule: home at {home} (mounted)" in done.stdout
    assert f"cwd {home} 0o700" in done.stdout  # only its user's


def test_no_home_volume_fails_after_the_timeout_naming_it(tmp_path):
    done = subprocess.run([sys.executable, "-m", "deploy.vm.notebook_server", "--home", str(tmp_path / "alice"),
                           "--device", "/dev/no-such-disk", "--timeout", "1", "--", "true"],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert done.stderr.strip() == ("graticule: the home volume did not appear at /dev/no-such-disk within 1 s; "
                                   "nothing started")

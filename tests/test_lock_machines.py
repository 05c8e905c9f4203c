"""Locks made for the machines that install them, whatever machine makes them.

A local find-links directory (no network) holds hand-made wheels tagged for Linux x86_64
and aarch64, one dependency that only aarch64 needs (a `platform_machine` marker), and a
pure one. Resolving for aarch64 on this x86_64 host must pick the aarch64 wheel and its
extra dependency, with hashes; the x86_64 resolution installs into a clean venv here with
hashes required, the aarch64 one into a clean directory for aarch64 (uv --python-platform),
and a lock whose hash does not match the file is refused.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from deploy.environments import build, machines, uv
from deploy.environments.lock import Entry
from render.validate import validate_text
from tests.support import environments as support
from tests.support.wheelhouse import make_wheel

pytestmark = pytest.mark.skipif(machines.host_machine() != "x86_64", reason="the test installs x86_64 wheels here")

ARM_PLATFORM = support.PLATFORM_YAML.replace(
    "  small: {cpu: 1, memory: 1GiB, price_per_hour_usd: 0.01}",
    "  small: {cpu: 1, memory: 1GiB, price_per_hour_usd: 0.01, instance: {aws: m7g.large}}",
)


@pytest.fixture
def index(tmp_path, monkeypatch) -> Path:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    needs_arm = ('armhelper==1.0; platform_machine == "aarch64"',)
    for machine in ("x86_64", "aarch64"):
        make_wheel(wheels, "fastcore", "2.0", f"py3-none-manylinux_2_28_{machine}", f"MACHINE = {machine!r}\n",
                   needs_arm)
    make_wheel(wheels, "armhelper", "1.0", "py3-none-any", "HELP = True\n")
    make_wheel(wheels, "plainlib", "1.5", "py3-none-any", "PLAIN = True\n")
    monkeypatch.setenv("UV_FIND_LINKS", str(wheels))
    monkeypatch.setenv("UV_NO_INDEX", "1")
    monkeypatch.setenv("UV_OFFLINE", "1")  # uv 0.13 ignores UV_NO_INDEX: this keeps it off the network
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    return wheels


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_arm_profile_locks_for_both_machines():
    assert machines.machines_of(validate_text(ARM_PLATFORM)) == ("x86_64", "aarch64")
    assert machines.machines_of(validate_text(support.PLATFORM_YAML)) == ("x86_64",)
    assert machines.is_arm("c7gn.xlarge", None) and machines.is_arm(None, "t2a-standard-4")
    assert not machines.is_arm("g5.xlarge", None) and not machines.is_arm("m7i.large", "n2-standard-4")


def test_resolving_for_another_machine_picks_its_wheels_and_dependencies(index):
    arm = machines.compile_for(["fastcore", "plainlib"], "3.11", "aarch64")
    amd = machines.compile_for(["fastcore", "plainlib"], "3.11", "x86_64")
    assert [machines.unhashed(line) for line in arm] == ["armhelper==1.0", "fastcore==2.0", "plainlib==1.5"]
    assert [machines.unhashed(line) for line in amd] == ["fastcore==2.0", "plainlib==1.5"]
    arm_wheel = index / "fastcore-2.0-py3-none-manylinux_2_28_aarch64.whl"
    amd_wheel = index / "fastcore-2.0-py3-none-manylinux_2_28_x86_64.whl"
    fastcore_arm = next(line for line in arm if line.startswith("fastcore=="))
    fastcore_amd = next(line for line in amd if line.startswith("fastcore=="))
    assert f"--hash=sha256:{_sha(arm_wheel)}" in fastcore_arm
    assert f"--hash=sha256:{_sha(amd_wheel)}" in fastcore_amd
    assert all(" --hash=sha256:" in line for line in (*arm, *amd))


def test_the_x86_64_resolution_installs_here_with_hashes_required(index, tmp_path):
    lines = machines.compile_for(["fastcore", "plainlib"], "3.11", "x86_64")
    entry = Entry("3.11", "0" * 16, tuple(map(machines.unhashed, lines)), {"x86_64": lines})
    installed, hashed = entry.install_lines()
    assert hashed and installed == lines
    python = build.build(tmp_path / "env", "3.11", list(installed), require_hashes=True)
    result = subprocess.run([str(python), "-c", "import fastcore, plainlib; print(fastcore.MACHINE)"],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""}, check=True)
    assert result.stdout.strip() == "x86_64"


def test_a_hash_that_does_not_match_is_refused(index, tmp_path):
    lines = machines.compile_for(["plainlib"], "3.11", "x86_64")
    tampered = [line.split(" --hash=")[0] + " --hash=sha256:" + "0" * 64 for line in lines]
    with pytest.raises(uv.UvError):
        build.build(tmp_path / "env", "3.11", tampered, require_hashes=True)
    assert not (tmp_path / "env").exists()


def test_the_aarch64_resolution_installs_for_aarch64_from_this_host_with_hashes_required(index, tmp_path):
    """A lock made here for the other machine is whole: uv installs it for aarch64 (its
    files, not run here) into a clean directory, every file checked against its hash."""
    lines = machines.compile_for(["fastcore", "plainlib"], "3.11", "aarch64")
    requirements = tmp_path / "aarch64.txt"
    requirements.write_text("".join(f"{line}\n" for line in lines))
    target = tmp_path / "aarch64-site"
    uv.run("pip", "install", "--require-hashes", "--target", str(target), "--python-version", "3.11",
           "--python-platform", machines.UV_PLATFORMS["aarch64"], "-r", str(requirements))
    assert (target / "fastcore" / "__init__.py").read_text() == "MACHINE = 'aarch64'\n"
    assert "Tag: py3-none-manylinux_2_28_aarch64" in (target / "fastcore-2.0.dist-info" / "WHEEL").read_text()
    assert (target / "armhelper" / "__init__.py").exists() and (target / "plainlib" / "__init__.py").exists()

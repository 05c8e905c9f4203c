"""Instances stop with moto's terminate/stop, and the simulator leaves nothing behind, failure or not."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.procs import alive
from tests.support.simulator import Simulator, simulator_unavailable
from tests.support.simulator.probes import launch, wait_listening

pytestmark = [pytest.mark.slow, pytest.mark.skipif(simulator_unavailable() is not None,
                                                   reason=simulator_unavailable() or "")]

SERVE = """#!/bin/sh
nohup python3 -m http.server 8000 >/var/log/http.log 2>&1 &
sleep 1000 &
"""


@pytest.fixture
def ec2(moto_server):  # noqa: F811
    moto_server.reset()
    return moto_server.client("ec2")


@pytest.fixture
def subnet_id(ec2) -> str:
    return ec2.describe_subnets()["Subnets"][0]["SubnetId"]


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def _mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines() if str(path) in line]


def test_terminate_stops_the_sandbox(moto_server, ec2, subnet_id, tmp_path):  # noqa: F811
    with Simulator(moto_server, tmp_path) as sim:
        keep, gone = launch(ec2, subnet_id, SERVE), launch(ec2, subnet_id, SERVE)
        box, other = sim.wait_running(gone), sim.wait_running(keep)
        wait_listening(box, 8000)
        pids = box.pids()
        commands = [" ".join(psutil.Process(pid).cmdline()) for pid in pids]
        assert any("http.server 8000" in c for c in commands) and "sleep 1000" in commands
        assert any(c.endswith("/sbin/sim-reap") for c in commands)  # PID 1 of the instance
        assert box.ns in _namespaces() and _mounts_under(box.directory)

        ec2.terminate_instances(InstanceIds=[gone])
        sim.wait_stopped(gone)
        assert [pid for pid in pids if alive(pid)] == []
        assert box.ns not in _namespaces()
        assert _mounts_under(box.directory) == []
        # The other instance runs on, and the log of the stopped one is kept for the test to read.
        assert all(alive(pid) for pid in other.pids()) and other.ns in _namespaces()
        assert "sim-init: ready" in box.console_log.read_text()

        ec2.stop_instances(InstanceIds=[keep])
        sim.wait_stopped(keep)
        assert other.ns not in _namespaces()


def test_failure_inside_the_block_tears_everything_down(moto_server, ec2, subnet_id, tmp_path):  # noqa: F811
    with pytest.raises(RuntimeError, match="the test failed"), Simulator(moto_server, tmp_path) as sim:
        boxes = [sim.wait_running(launch(ec2, subnet_id, SERVE)) for _ in range(2)]
        wait_listening(boxes[0], 8000)
        pids = [pid for box in boxes for pid in box.pids()]
        assert {box.ns for box in boxes} | {sim.vpc.name} <= _namespaces()
        raise RuntimeError("the test failed")
    assert [pid for pid in pids if alive(pid)] == []
    assert not any(name.startswith(sim.prefix) for name in _namespaces())
    assert _mounts_under(tmp_path) == []


def test_a_failed_boot_is_torn_down_too(moto_server, ec2, subnet_id, tmp_path, monkeypatch):  # noqa: F811
    """An instance whose sandbox cannot start is reported, and nothing of it stays."""
    from tests.support.simulator import sandbox

    def broken(self, rootfs):
        original(self, rootfs)
        (self.root / "sbin/sim-init").unlink()  # the chroot then has nothing to run

    original = sandbox.Sandbox.prepare
    monkeypatch.setattr(sandbox.Sandbox, "prepare", broken)
    with pytest.raises(RuntimeError, match="simulator failed"), Simulator(moto_server, tmp_path) as sim:
        sim.wait_running(launch(ec2, subnet_id, SERVE), timeout=60)
    assert not any(name.startswith(sim.prefix) for name in _namespaces())
    assert _mounts_under(tmp_path) == []


def test_pid_1_reaps_orphans_as_init_does(moto_server, ec2, subnet_id, tmp_path):  # noqa: F811
    orphans = "#!/bin/sh\nfor i in 1 2 3; do sh -c 'sleep 0.1 &'; done\nsleep 0.5\n"
    with Simulator(moto_server, tmp_path) as sim:
        box = sim.wait_running(launch(ec2, subnet_id, orphans))
        deadline = time.monotonic() + 60
        while "sim-init: ready" not in box.console_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        states = ""
        while time.monotonic() < deadline:
            states = box.exec(["ps", "-eo", "pid=,stat=,args="]).stdout
            if not any(line.split()[1].startswith("Z") for line in states.splitlines()):
                break
            time.sleep(0.2)
        assert not any(line.split()[1].startswith("Z") for line in states.splitlines()), states
        assert states.splitlines()[0].split()[0] == "1" and "sim-reap" in states.splitlines()[0]

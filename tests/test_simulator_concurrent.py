"""Two machine simulators at once in two processes, as two pytest-xdist workers run them (the
AWS platform's chain on one, the GCP platform's on another; tests/support/xdist_groups.py).

Both watch one moto server, so both boot the same instance: the same instance id and the same
private address in two VPCs on one host. Each keeps its namespaces (named after its process),
bridge, addresses and nft rules to itself, and one's teardown leaves the other's machine
serving. Real parts: moto's server, namespaces, nftables, the Debian root; runs as root.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.procs import alive, kill_tree
from tests.support.simulator import Simulator, netns, simulator_unavailable
from tests.support.simulator.probes import connect, launch, wait_listening

pytestmark = [pytest.mark.slow, pytest.mark.skipif(simulator_unavailable() is not None,
                                                   reason=simulator_unavailable() or "")]

REPO = Path(__file__).resolve().parents[1]
SERVE = "#!/bin/sh\ncd /tmp\nnohup python3 -m http.server 8000 >/var/log/http.log 2>&1 &\n"

# The other worker: its own simulator on the same moto, until the test closes its stdin.
OTHER_WORKER = """
import sys
from pathlib import Path

from tests.support.moto_server import MotoServer
from tests.support.simulator import Simulator
from tests.support.simulator.probes import connect, wait_listening

url, workdir, instance_id = sys.argv[1:4]
with Simulator(MotoServer(url=url, pid=0), Path(workdir)) as sim:
    box = sim.wait_running(instance_id, timeout=300)
    wait_listening(box, 8000, timeout=120)
    print(sim.prefix, box.ns, box.ip, connect(box, box.ip, 8000), flush=True)
    sys.stdin.read()
print("closed", flush=True)
"""


def _namespaces(prefix: str) -> list[str]:
    return [line.split()[0] for line in netns.run("ip", "netns", "list").splitlines()
            if line.split() and line.split()[0].startswith(prefix)]


def _clean_up_after(pid: int, workdir: Path) -> None:
    """What a killed simulator process leaves: its namespaces and its instances' mounts."""
    for name in _namespaces(f"gsim{pid}-"):
        netns.delete_ns(name)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in mounts:
        if mount.startswith(str(workdir)):
            subprocess.run(["umount", "-l", mount], capture_output=True)


def test_two_simulators_in_two_processes_keep_to_themselves(moto_server, tmp_path):  # noqa: F811
    moto_server.reset()
    ec2 = moto_server.client("ec2")
    subnet = next(s for s in ec2.describe_subnets()["Subnets"] if s["AvailabilityZone"] == "us-west-2a")
    instance_id = launch(ec2, subnet["SubnetId"], SERVE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with Simulator(moto_server, tmp_path / "here") as here:
        other = subprocess.Popen([sys.executable, "-c", OTHER_WORKER, moto_server.url, str(tmp_path / "there"),
                                  instance_id], cwd=REPO, env=env, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            box = here.wait_running(instance_id, timeout=300)
            wait_listening(box, 8000, timeout=120)
            reported = other.stdout.readline().split()
            assert len(reported) == 4, other.stderr.read() if other.poll() is not None else reported
            prefix, other_ns, other_ip, other_probe = reported
            assert prefix == f"gsim{other.pid}-0" and here.prefix.startswith(f"gsim{os.getpid()}-")
            # One instance, booted twice: same address, two namespaces, each serving its own copy.
            assert other_ip == box.ip and other_ns != box.ns and other_probe == "open"
            assert connect(box, box.ip, 8000) == "open"
            assert here.vpc.name in _namespaces(here.prefix) and f"{prefix}-vpc" in _namespaces(prefix)

            other.stdin.close()  # the other worker's session ends: its simulator tears down
            assert other.wait(timeout=120) == 0, other.stderr.read()
            assert other.stdout.read().split() == ["closed"]
            assert _namespaces(f"{prefix}-") == []
            # ...and this one's machine never noticed.
            assert connect(box, box.ip, 8000) == "open"
            assert box.ns in _namespaces(here.prefix)
        finally:
            if alive(other.pid):
                kill_tree(other.pid)
                other.wait(timeout=30)
            _clean_up_after(other.pid, tmp_path / "there")
        ec2.terminate_instances(InstanceIds=[instance_id])
        here.wait_stopped(instance_id)
    assert _namespaces(f"{here.prefix}-") == []

"""One simulated machine: a network namespace on the VPC bridge, an overlay root, a PID 1.

Layout of an instance directory (on the host):
    guest/     what boot.sh copies into the root (user data, environment, init, simctl)
    root/ rw/  mount points, used only inside the sandbox's own mount namespace
    console.log  stdout and stderr of init, the user data and simctl
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.support.procs import kill_tree
from tests.support.simulator import netns
from tests.support.simulator.imds import ADDRESS as IMDS_ADDRESS
from tests.support.simulator.imds import InstanceMetadata, MetadataService

GUEST = Path(__file__).parent / "guest"


@dataclass(frozen=True)
class Wiring:
    """Where a sandbox plugs in: the VPC namespace and bridge, its subnet's gateway."""

    vpc_netns: str
    bridge: str
    subnet: ipaddress.IPv4Network
    endpoint_url: str  # moto as seen from inside the VPC


@dataclass
class Sandbox:
    instance_id: str
    private_ip: str
    netns: str
    directory: Path
    security_groups: tuple[str, ...]
    process: subprocess.Popen | None = None
    metadata_service: MetadataService | None = None
    firewall: str = ""
    detected_at: float = 0.0  # wall clock: when the simulator saw the instance running
    veth: str = ""  # its peer's name in the VPC namespace

    @property
    def console_log(self) -> Path:
        return self.directory / "console.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pids(self) -> set[int]:
        """The sandbox's whole process tree as the host sees it."""
        try:
            top = psutil.Process(self.pid)
            return {top.pid, *(p.pid for p in top.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def init_pid(self) -> int:
        """PID (on the host) of the sandbox's PID 1: unshare's only child."""
        children = psutil.Process(self.pid).children()
        if not children:
            raise RuntimeError(f"{self.instance_id}: sandbox init is not running")
        return children[0].pid

    def user_data_started_at(self) -> float | None:
        """Wall-clock time at which init began the user data (the sandbox shares the host's clock)."""
        found = re.search(r"sim-init: running user data at ([\d.]+)", self.console_log.read_text(errors="replace"))
        return float(found.group(1)) if found else None

    def boot_finished(self) -> bool:
        return "sim-init: boot finished" in self.console_log.read_text(errors="replace")

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a command inside the sandbox (its root, network, mounts, PIDs and hostname)."""
        command = ["nsenter", "-t", str(self.init_pid()), "-m", "-n", "-p", "-u", "-r", "-w", *argv]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _gateway(subnet: ipaddress.IPv4Network) -> str:
    return str(subnet.network_address + 1)  # the VPC router's address, as on AWS


def boot(sandbox: Sandbox, wiring: Wiring, rootfs: Path, metadata: InstanceMetadata, region: str) -> None:
    """Plug the sandbox into the VPC, start its metadata service and its init."""
    suffix = sandbox.instance_id.removeprefix("i-")[-8:]
    sandbox.veth = f"sv{suffix}"
    if sandbox.netns not in netns.names():
        netns.add(sandbox.netns)
    netns.ip("link", "add", "eth0", "netns", sandbox.netns, "type", "veth",
             "peer", "name", sandbox.veth, "netns", wiring.vpc_netns)
    gateway = _gateway(wiring.subnet)
    host = ["-n", wiring.vpc_netns]
    if gateway not in netns.ip(*host, "-4", "addr", "show", "dev", wiring.bridge).stdout:
        netns.ip(*host, "addr", "add", f"{gateway}/{wiring.subnet.prefixlen}", "dev", wiring.bridge)
    netns.ip(*host, "link", "set", sandbox.veth, "master", wiring.bridge, "up")
    inside = ["-n", sandbox.netns]
    netns.ip(*inside, "addr", "add", f"{sandbox.private_ip}/{wiring.subnet.prefixlen}", "dev", "eth0")
    netns.ip(*inside, "link", "set", "eth0", "up")
    netns.ip(*inside, "addr", "add", f"{IMDS_ADDRESS}/32", "dev", "lo")
    netns.ip(*inside, "route", "add", "default", "via", gateway, "dev", "eth0", "onlink")

    listener = netns.listener_in(sandbox.netns, IMDS_ADDRESS, 80)
    sandbox.metadata_service = MetadataService(listener, metadata).start()

    guest = sandbox.directory / "guest"
    for name in ("root", "rw", "copy", "guest"):
        (sandbox.directory / name).mkdir(parents=True, exist_ok=True)
    (guest / "user-data").write_bytes(metadata.user_data or b"#!/bin/sh\n")
    hostname = f"ip-{sandbox.private_ip.replace('.', '-')}"
    (guest / "hostname").write_text(f"{hostname}\n")
    (guest / "hosts").write_text(f"127.0.0.1 localhost\n::1 localhost\n{sandbox.private_ip} {hostname}\n")
    # What every process of the instance sees: region and the VPC's AWS endpoint.
    (guest / "environment").write_text(
        f"AWS_DEFAULT_REGION={region}\nAWS_REGION={region}\nAWS_ENDPOINT_URL={wiring.endpoint_url}\n"
        f"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://{IMDS_ADDRESS}/\n")
    for name in ("sim-init.sh", "simctl.sh"):
        shutil.copy(GUEST / name, guest / name)
    with open(sandbox.console_log, "ab") as console:
        sandbox.process = subprocess.Popen(
            ["ip", "netns", "exec", sandbox.netns, "unshare", "--mount", "--pid", "--uts", "--fork", "--propagation",
             "private", "/bin/sh", str(GUEST / "boot.sh"), str(sandbox.directory), str(rootfs)],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def stop(sandbox: Sandbox, vpc_netns: str) -> None:
    """Stop every process (by PID), then the metadata service, then unplug and delete the namespace."""
    if sandbox.process is not None:
        kill_tree(sandbox.process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            sandbox.process.wait(timeout=10)
    if sandbox.metadata_service is not None:
        sandbox.metadata_service.close()
        sandbox.metadata_service = None
    if sandbox.veth and vpc_netns in netns.names():
        netns.ip("-n", vpc_netns, "link", "delete", sandbox.veth, check=False)
    netns.delete(sandbox.netns)
    shutil.rmtree(sandbox.directory / "copy", ignore_errors=True)

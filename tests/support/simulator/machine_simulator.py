"""What the AWS and the GCE machine simulators do alike (simulator.py, gce_simulator.py): a
VPC namespace, a watcher thread that brings the sandboxes in line with the cloud's API every
`poll_interval`, booting a sandbox (its namespace on the VPC bridge, the metadata server on
169.254.169.254 inside it, the guest started), stopping one, writing an instance's ingress
rules into its namespace, tearing everything down and the tests' waits.

The clouds differ in what they read from the API (`sync`), what the metadata server serves
and what the guest is given at boot: those are the subclasses'.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from . import netns
from .forwarder import Forwarder
from .rootfs import ensure_rootfs
from .sandbox import IMDS_ADDRESS, Sandbox

# The VPC namespace forwards between its own subnets and nothing else: explicit, though
# it has no other interface to forward to.
VPC_FILTER = """table inet sim_vpc {
  chain forward {
    type filter hook forward priority 0; policy drop;
    iifname "br0" oifname "br0" accept
  }
}
"""


class MachineSimulator:
    # What a poll of the API may meet and retry rather than fail on, up to TRANSIENT_LIMIT in a row.
    TRANSIENT: tuple[type[BaseException], ...] = ()
    TRANSIENT_LIMIT = 40

    def __init__(self, workdir: Path, poll_interval: float, prefix: str, watcher_name: str) -> None:
        self.workdir = Path(workdir)
        self.poll_interval = poll_interval
        self.prefix = prefix
        self.vpc = netns.Vpc(f"{prefix}-vpc")
        self.sandboxes: dict[str, Sandbox] = {}  # instance id -> its sandbox
        self.stopped: set[str] = set()
        self.errors: list[BaseException] = []
        self._servers: dict = {}  # instance id -> its metadata server
        self._forwarders: list[Forwarder] = []
        self._lock = threading.RLock()
        self._halt = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True, name=watcher_name)
        self._veths = itertools.count()

    # lifecycle -----------------------------------------------------------------------
    def _create_vpc(self) -> None:
        self.rootfs = ensure_rootfs()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.vpc.create()
        netns.run("ip", "netns", "exec", self.vpc.name, "nft", "-f", "-", input=VPC_FILTER)

    def _forward(self, port: int, url: str) -> None:
        """A service on this machine's loopback (`url`), reached by every instance at its
        subnet's router address and `port` (the cloud's API, as a VPC endpoint would)."""
        api = urlparse(url)
        if api.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the instances' API endpoints must be on this machine's loopback: {url}")
        target = ("127.0.0.1", api.port or 80)
        listener = netns.listen_in_ns(self.vpc.name, "0.0.0.0", port)
        self._forwarders.append(Forwarder(listener, lambda: socket.create_connection(target, timeout=10)).start())

    def __exit__(self, exc_type, exc, traceback) -> None:
        problems = self.close()
        if problems and exc is None:  # never hide the test's own failure behind a teardown one
            raise RuntimeError(f"simulator teardown failed: {problems[0]!r}") from problems[0]

    def close(self) -> list[Exception]:
        """Stop everything; every step is tried even when one fails. Returns what failed."""
        self._halt.set()
        self._halting()
        if self._watcher.is_alive():
            self._watcher.join(timeout=30)
        problems: list[Exception] = []
        with self._lock:
            for instance_id in list(self.sandboxes):
                try:
                    self._stop(instance_id)
                except Exception as error:
                    problems.append(error)
            self._close_services()
            for forwarder in self._forwarders:
                forwarder.stop()
            self.vpc.delete()
            for line in netns.run("ip", "netns", "list").splitlines():  # whatever a crash mid-boot left
                name = line.split()[0] if line.split() else ""
                if name.startswith(f"{self.prefix}-"):
                    netns.delete_ns(name)
        return problems

    def _halting(self) -> None:
        """What must stop before the watcher is joined (timers of the cloud's own)."""

    def _close_services(self) -> None:
        """The cloud's own listeners on the VPC (load balancers, front doors), once the sandboxes are gone."""

    # watching the API ----------------------------------------------------------------
    def _watch(self) -> None:
        transient = 0
        while not self._halt.is_set():
            try:
                self.sync()
                transient = 0
            except self.TRANSIENT as error:  # a 5xx/429 or a lost answer (a test may inject them): try again
                transient += 1
                if transient == self.TRANSIENT_LIMIT:
                    self.errors.append(error)
            except Exception as error:  # surfaced by wait_* in the test's thread
                self.errors.append(error)
            self._halt.wait(self.poll_interval)

    def sync(self) -> None:
        raise NotImplementedError

    # one sandbox ---------------------------------------------------------------------
    def _attach(self, box: Sandbox, veth_prefix: str) -> None:
        """Register `box` (first: a failed boot is still torn down), its namespace on the VPC."""
        self.sandboxes[box.instance_id] = box
        netns.add_ns(box.ns)
        box.gateway = self.vpc.attach(box.ns, f"{veth_prefix}{next(self._veths)}", box.ip, box.cidr)

    def _serve_metadata(self, box: Sandbox, server: Callable) -> None:
        """The metadata server `server(listener)` on 169.254.169.254:80, inside the box's namespace only."""
        netns.run("ip", "-n", box.ns, "addr", "add", f"{IMDS_ADDRESS}/32", "dev", "lo")
        listener = netns.listen_in_ns(box.ns, IMDS_ADDRESS, 80)
        self._servers[box.instance_id] = server(listener).start()

    @staticmethod
    def _start_guest(box: Sandbox, detected_at: float) -> None:
        box.start()
        box.extra["started_at"] = time.monotonic()  # from here on, the instance's own processes
        box.extra["detected_at"] = detected_at
        box.extra["setup_seconds"] = box.extra["started_at"] - detected_at
        box.init_pid()
        box.extra["booted"] = True

    @staticmethod
    def _apply_ruleset(box: Sandbox, script: str) -> None:
        """The box's ingress rules (an nft script replacing its table), written when they changed."""
        if box.extra.get("ruleset") != script:
            netns.run("ip", "netns", "exec", box.ns, "nft", "-f", "-", input=script)
            box.extra["ruleset"] = script

    def _stop(self, instance_id: str) -> Sandbox:
        box = self.sandboxes.pop(instance_id)
        self.stopped.add(instance_id)
        server = self._servers.pop(instance_id, None)
        with contextlib.suppress(Exception):
            if server:
                server.stop()
        box.stop()
        return box

    # for tests -----------------------------------------------------------------------
    def _keys(self, instance_id: str, box: Sandbox) -> tuple[str, ...]:
        """What a test may name an instance by."""
        return (instance_id,)

    def _stopped_keys(self) -> set[str]:
        return self.stopped

    def _raise_errors(self) -> None:
        if self.errors:
            raise RuntimeError(f"simulator failed: {self.errors[0]!r}") from self.errors[0]

    def wait_running(self, key: str, timeout: float = 120.0) -> Sandbox:
        """The booted sandbox of the instance `key` names."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_errors()
            with self._lock:
                for instance_id, box in self.sandboxes.items():
                    if key in self._keys(instance_id, box) and box.extra.get("booted"):
                        return box
            time.sleep(0.05)
        raise TimeoutError(f"{key} was not booted within {timeout} s")

    def wait_stopped(self, key: str, timeout: float = 60.0) -> None:
        """Until no sandbox of the instance `key` names runs, and one was stopped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_errors()
            with self._lock:
                running = [i for i, box in self.sandboxes.items() if key in self._keys(i, box)]
                if not running and key in self._stopped_keys():
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{key} was not stopped within {timeout} s")

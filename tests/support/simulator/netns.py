"""Network namespaces: the "VPC" (a bridge with the subnets' router addresses) and one per instance.

Nothing here is ever in the host's namespace: the bridge lives in the VPC namespace, which
has no other interface, no default route and no NAT, so an instance can reach other
instances and the simulator's own listeners (the API forwarder, the IMDS), nothing else.
Listening sockets are opened inside a namespace from a short-lived thread (setns is per
thread), so the simulator's servers run in the test process and reach moto on the host's
127.0.0.1.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import socket
import subprocess
import threading
from collections.abc import Callable

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def run(*args: str, input: str | None = None) -> str:
    result = subprocess.run(list(args), capture_output=True, text=True, input=input)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def ns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def add_ns(name: str) -> None:
    run("ip", "netns", "add", name)
    # IPv4 only, as the platform's VPC: no IPv6 link-local chatter between namespaces.
    run("ip", "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1")
    run("ip", "-n", name, "link", "set", "lo", "up")


def delete_ns(name: str) -> None:
    if ns_exists(name):
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


def _socket_in_ns(ns: str, make: Callable[[], socket.socket]) -> socket.socket:
    """Run `make` in a thread switched into namespace `ns`; the socket stays there when used elsewhere."""
    outcome: dict[str, object] = {}

    def inside() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                outcome["socket"] = make()
            finally:
                _setns(own)
        except OSError as error:
            outcome["error"] = error
        finally:
            os.close(own)
            os.close(target)

    thread = threading.Thread(target=inside)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["socket"]  # type: ignore[return-value]


def listen_in_ns(ns: str, host: str, port: int) -> socket.socket:
    """A TCP socket listening on host:port inside namespace `ns`."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
        return sock

    return _socket_in_ns(ns, make)


def connect_in_ns(ns: str, host: str, port: int, timeout: float = 2.0) -> socket.socket:
    """A TCP connection to host:port made from inside namespace `ns` (raises OSError when refused)."""
    return _socket_in_ns(ns, lambda: socket.create_connection((host, port), timeout=timeout))


class Vpc:
    """The VPC namespace: bridge `br0` carrying each subnet's router address (.1, as in AWS)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routers: dict[str, str] = {}  # subnet CIDR -> router address

    def create(self) -> None:
        add_ns(self.name)
        run("ip", "-n", self.name, "link", "add", "br0", "type", "bridge")
        # A bridge takes the lowest MAC of its ports unless given one: removing an instance's
        # port would change the routers' MAC under every other namespace's ARP cache.
        run("ip", "-n", self.name, "link", "set", "br0", "address", "02:00:00:00:00:01")
        run("ip", "-n", self.name, "link", "set", "br0", "up")
        # Routing between the VPC's subnets only: the namespace has no other link, so there
        # is nowhere else to forward to; no default route, no NAT.
        run("ip", "netns", "exec", self.name, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

    def router_for(self, cidr: str) -> str:
        if cidr not in self.routers:
            network = ipaddress.ip_network(cidr)
            router = str(network.network_address + 1)
            run("ip", "-n", self.name, "addr", "add", f"{router}/{network.prefixlen}", "dev", "br0")
            self.routers[cidr] = router
        return self.routers[cidr]

    def attach(self, sandbox_ns: str, host_side: str, ip: str, cidr: str) -> str:
        """Wire a sandbox namespace to the bridge as eth0 with `ip`; returns its default gateway."""
        router = self.router_for(cidr)
        prefix = ipaddress.ip_network(cidr).prefixlen
        run("ip", "-n", self.name, "link", "add", host_side, "type", "veth", "peer", "name", "eth0",
            "netns", sandbox_ns)
        run("ip", "-n", self.name, "link", "set", host_side, "master", "br0", "up")
        run("ip", "-n", sandbox_ns, "addr", "add", f"{ip}/{prefix}", "dev", "eth0")
        run("ip", "-n", sandbox_ns, "link", "set", "eth0", "up")
        run("ip", "-n", sandbox_ns, "route", "add", "default", "via", router)
        return router

    def delete(self) -> None:
        delete_ns(self.name)

"""Network namespaces: `ip` commands and sockets opened inside a namespace from this process.

A socket keeps the namespace it was created in, so a server thread here can listen inside a
sandbox (the metadata stand-in) or inside the VPC (the moto endpoint) while it talks to the
host's loopback. setns() only moves the calling thread; a throwaway thread does it.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def in_netns(netns: str, *argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, input=input,
                            check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {netns}: {result.stderr.strip()}")
    return result


def names() -> set[str]:
    """Every named network namespace on the host."""
    return {line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.strip()}


def add(netns: str) -> None:
    ip("netns", "add", netns)
    ip("-n", netns, "link", "set", "lo", "up")


def delete(netns: str) -> None:
    if netns in names():
        ip("netns", "delete", netns)


def socket_in(netns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A new socket that lives in `netns`, whichever namespace this process is in."""
    made: dict[str, object] = {}

    def enter_and_create() -> None:
        try:
            fd = os.open(Path("/run/netns") / netns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            made["socket"] = socket.socket(family, kind)
        except BaseException as error:  # handed to the caller's thread
            made["error"] = error

    # The thread ends in the namespace it entered; nothing else runs on it.
    worker = threading.Thread(target=enter_and_create, name=f"setns-{netns}")
    worker.start()
    worker.join()
    if "error" in made:
        raise made["error"]  # type: ignore[misc]
    return made["socket"]  # type: ignore[return-value]


def listener_in(netns: str, address: str, port: int) -> socket.socket:
    sock = socket_in(netns)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(64)
    return sock

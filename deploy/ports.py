"""Loopback ports chosen by one process and bound a moment later by another.

Asking the OS for a free port (bind to port 0) hands out one from its ephemeral range,
the same range it draws from for every outgoing connection and every other bind to
port 0: in the second or two before the scheduler, hub or gateway binds it, the OS may
give it to some other socket. Ports below the ephemeral range are never handed out by
the OS, so only a process that names the same port explicitly could take one of those.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Where /proc is missing (macOS, Windows): below 32768 is below the ephemeral range of
# Linux (32768), macOS and Windows (49152) alike.
DEFAULT_EPHEMERAL_START = 32768
LOWEST = 10000  # above the well-known and most registered service ports
ATTEMPTS = 200


def ephemeral_start(path: Path = EPHEMERAL_RANGE_FILE) -> int:
    """The first port of the OS's ephemeral range."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_START


def is_free(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:`port` now (as servers do, SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(chooser: random.Random | None = None, range_file: Path = EPHEMERAL_RANGE_FILE) -> int:
    """A free port on 127.0.0.1 below the ephemeral range (any free port if none is)."""
    chooser = chooser or random.SystemRandom()
    end = ephemeral_start(range_file)
    if end > LOWEST:
        for _ in range(ATTEMPTS):
            port = chooser.randrange(LOWEST, end)
            if is_free(port):
                return port
    with socket.socket() as sock:  # a crowded or odd machine: let the OS choose
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

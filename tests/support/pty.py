"""Run a program under a pseudo-terminal, as a person's shell would, and read all it wrote."""

from __future__ import annotations

import os
import select
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import REPO


def run_in_pty(argv: list[str], extra_env: Mapping[str, str], cwd: Path = REPO) -> bytes:
    """Everything `argv` writes to its terminal (stdin, stdout and stderr are the pty); it
    must exit 0. CI and NO_COLOR are cleared unless `extra_env` sets them."""
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "NO_COLOR")}
    env.update({"PYTHONPATH": str(REPO), "TERM": "xterm-256color", "COLUMNS": "120", **extra_env})
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                            start_new_session=True)
    os.close(slave)
    seen = bytearray()
    try:
        while select.select([master], [], [], 120)[0]:  # a hang guard only
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            seen.extend(chunk)
        assert proc.wait(timeout=120) == 0, bytes(seen).decode(errors="replace")
        return bytes(seen)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)

"""Start a long-running program detached from the one starting it: its own session (a
Ctrl-C or a closed terminal does not reach it), stdin closed, output appended to a log
file created 0600. The local supervisor's components and the jobs' drivers start this way."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path


def detached(argv: list[str], env: Mapping[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(fd)

"""Detached local processes for schedulers and workers, and their pid files.

Cluster processes are started in their own session and re-parented away from the
gateway, so that restarting the gateway (re-applying the platform) does not take them
down. Each one leaves a pid file under `<state>/gateway/pids/` until it is stopped, so that
`platform down` can stop them by PID even when the gateway is not running. A PID is
trusted only together with the process's start time, so a recycled PID is never killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

import psutil

from deploy.runtime import liveness
from deploy.runtime.liveness import live_process

# A tiny Python launcher starts the command and exits at once: the command is re-parented
# and keeps running whatever happens to the gateway's process tree. (Not `sh -c 'cmd &'`:
# a non-interactive shell starts background commands with SIGINT ignored, and SIGINT is
# how dask-gateway asks a scheduler or worker to close cleanly.)
_LAUNCHER = (
    "import subprocess, sys\n"
    "log = open(sys.argv[1], 'ab')\n"
    "cmd = sys.argv[2:]\n"
    "out = subprocess.STDOUT\n"
    "print(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=out).pid)\n"
)


async def spawn_detached(command: list[str], env: dict[str, str], cwd: str, log_path: str) -> tuple[int, float]:
    """Start `command` detached, in a session of its own; returns (pid, start time)."""
    launcher = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-S",
        "-c",
        _LAUNCHER,
        log_path,
        *command,
        cwd=cwd,
        env=env,
        start_new_session=True,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await launcher.communicate()
    if launcher.returncode != 0:
        raise RuntimeError(f"could not start {command[0]} (launcher exited {launcher.returncode})")
    pid = int(out.decode().strip())
    return pid, psutil.Process(pid).create_time()


def is_alive(pid: int | None, started: float | None = None) -> bool:
    return live_process(pid, started) is not None


async def stop(pid: int | None, started: float | None, grace: tuple[float, ...] = (5, 3, 3)) -> bool:
    """SIGINT, then SIGTERM, then SIGKILL, waiting `grace` seconds after each."""
    proc = live_process(pid, started)
    if proc is None:
        return True
    for sig, wait in zip((signal.SIGINT, signal.SIGTERM, signal.SIGKILL), grace, strict=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)
        if await _waitgone(proc, wait):
            return True
    return False


async def _waitgone(proc: psutil.Process, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pause = 0.05
    while not gone(proc):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)
    return True


def gone(proc: psutil.Process) -> bool:
    return not liveness.is_alive(proc)


class PidFiles:
    """`<dir>/<cluster>.<process>.json` holding {"pid", "started"} for each live process."""

    def __init__(self, directory: Path):
        self.directory = directory

    def _path(self, cluster: str, process: str) -> Path:
        return self.directory / f"{cluster}.{process}.json"

    def add(self, cluster: str, process: str, pid: int, started: float) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._path(cluster, process).write_text(json.dumps({"pid": pid, "started": started}))

    def remove(self, cluster: str, process: str) -> None:
        self._path(cluster, process).unlink(missing_ok=True)

    def entries(self) -> list[tuple[Path, int, float]]:
        found = []
        for path in sorted(self.directory.glob("*.json")):
            with contextlib.suppress(ValueError, KeyError, OSError):
                record = json.loads(path.read_text())
                found.append((path, int(record["pid"]), float(record["started"])))
        return found

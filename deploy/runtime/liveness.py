"""Whether a process is still the one we started: the one test of process liveness.

A PID alone is not trusted: it is compared with the process's start time, so a recycled
PID is never taken (or killed) for ours. Zombies count as gone: detached processes are
nobody's children here, so nobody reaps them.
"""

from __future__ import annotations

import psutil

# psutil's start time goes through JSON in pid files and records: allow for rounding.
START_TIME_TOLERANCE_S = 0.05


def live_process(pid: int | None, started: float | None = None) -> psutil.Process | None:
    """The live process `pid` if it started at `started` (when given), else None."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > START_TIME_TOLERANCE_S:
            return None
        return proc if proc.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        return None


def is_alive(proc: psutil.Process) -> bool:
    try:  # is_running() also rules out a recycled PID
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False

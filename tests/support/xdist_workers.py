"""Stopping a run on pytest-xdist's workers as cleanly as a run in one process.

`timeout`, `kill` and CI runners send SIGTERM to pytest, here xdist's controller, which runs
no test itself: the hubs, gateways and simulated machines belong to the worker processes.
Were the controller to stop, xdist would kill its workers 10 s later, mid-teardown. So the
controller passes the signal on to its workers (each turns it into an interrupt and tears its
fixtures down, as tests/conftest.py has it) and goes on: xdist ends the run, interrupted, once
every worker has reported that it finished.
"""

from __future__ import annotations

import contextlib
import os

import psutil
import pytest

_controller = False


def remember(config: pytest.Config) -> None:
    """Note whether this process is the controller of an xdist run (`-n N`, N > 0)."""
    global _controller
    _controller = bool(getattr(config.option, "numprocesses", 0)) and not hasattr(config, "workerinput")


def forward(signum: int) -> bool:
    """In an xdist controller, send `signum` to the workers (its child processes: it starts no
    others) and say so; anywhere else do nothing and return False."""
    if not _controller:
        return False
    workers = psutil.Process(os.getpid()).children()
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):  # already gone
            worker.send_signal(signum)
    return bool(workers)

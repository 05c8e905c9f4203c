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
_signalled = False


def remember(config: pytest.Config) -> None:
    """Note whether this process is the controller of an xdist run (`-n N`, N > 0)."""
    global _controller
    _controller = bool(getattr(config.option, "numprocesses", 0)) and not hasattr(config, "workerinput")


def forward(signum: int) -> bool:
    """In an xdist controller, send `signum` to the workers (its child processes: it starts no
    others) and say so; anywhere else do nothing and return False."""
    global _signalled
    if not _controller:
        return False
    _signalled = True
    workers = psutil.Process(os.getpid()).children()
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):  # already gone
            worker.send_signal(signum)
    return bool(workers)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # an xdist hook: absent with -p no:xdist
def pytest_testnodedown(node, error: object | None) -> None:
    """After the signal, a worker whose interrupt a test's code swallowed may end with tests
    still queued for it: xdist would take that for its own bug (an INTERNALERROR) and
    print no summary. Reported as interrupted, it ends the run as on Ctrl-C."""
    output = getattr(node, "workeroutput", None)
    if _signalled and error is None and output is not None and output.get("exitstatus") != 2:
        output["exitstatus"] = 2

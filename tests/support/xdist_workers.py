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
_ready: set[str] = set()  # ids of the workers up and running (gw0, ...)
_interrupted: set[str] = set()  # those the signal reached


def remember(config: pytest.Config) -> None:
    """Note whether this process is the controller of an xdist run (`-n N`, N > 0)."""
    global _controller
    _controller = bool(getattr(config.option, "numprocesses", 0)) and not hasattr(config, "workerinput")


def forward(signum: int) -> bool:
    """In an xdist controller, send `signum` to the workers (its child processes: it starts no
    others) and say so; anywhere else do nothing and return False."""
    if not _controller:
        return False
    _interrupted.update(_ready)
    workers = psutil.Process(os.getpid()).children()
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):  # already gone
            worker.send_signal(signum)
    return bool(workers)


@pytest.hookimpl(optionalhook=True)  # xdist hooks: absent with -p no:xdist
def pytest_testnodeready(node) -> None:
    _ready.add(node.gateway.id)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_testnodedown(node, error: object | None) -> None:
    """After the signal, a worker whose interrupt a test's code swallowed may end with tests
    still queued for it: xdist would take that for its own bug (an INTERNALERROR) and
    print no summary. Reported as interrupted, it ends the run as on Ctrl-C.
    Only the workers the signal reached: xdist replaces an interrupted worker, and the
    replacement, shut down at once, must end as what it is (finished), or xdist would
    replace it too, again and again (a collection each) up to its restart limit."""
    worker = node.gateway.id
    _ready.discard(worker)
    output = getattr(node, "workeroutput", None)
    if worker in _interrupted and error is None and output is not None and output.get("exitstatus") != 2:
        output["exitstatus"] = 2

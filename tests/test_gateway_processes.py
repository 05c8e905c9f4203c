"""Detached scheduler/worker processes: real processes, started and stopped by PID."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import psutil

from deploy.gateway import processes
from tests.support.procs import alive, kill_tree

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]


def test_detached_process_is_the_command_itself_outside_our_tree(tmp_path):
    log = tmp_path / "out.log"
    pid, started = asyncio.run(processes.spawn_detached(SLEEPER, dict(os.environ), str(tmp_path), str(log)))
    try:
        proc = psutil.Process(pid)
        assert proc.cmdline()[:2] == SLEEPER[:2]  # the command, not the shell that started it
        assert proc.create_time() == started
        assert pid not in {child.pid for child in psutil.Process().children(recursive=True)}
        assert os.getsid(pid) != os.getsid(0)  # its own session: a signal to ours misses it
        assert processes.is_alive(pid, started)
        assert not processes.is_alive(pid, started - 5)  # another process with that PID
        deadline = time.monotonic() + 60
        while "up" not in log.read_text():  # its output goes to the log
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # SIGINT is not ignored (dask-gateway's clean stop): gone within the first grace.
        assert asyncio.run(processes.stop(pid, started, grace=(20, 3, 3)))
        assert not alive(pid)
        assert "KeyboardInterrupt" in log.read_text()
    finally:
        kill_tree(pid)


def test_stop_never_signals_a_recycled_pid(tmp_path):
    proc = psutil.Popen(SLEEPER)
    try:
        assert asyncio.run(processes.stop(proc.pid, proc.create_time() - 5))
        assert alive(proc.pid)  # not ours by start time: left alone
    finally:
        kill_tree(proc.pid)


def test_pid_files(tmp_path):
    files = processes.PidFiles(tmp_path / "pids")
    files.add("c1", "scheduler", 123, 1.5)
    files.add("c1", "worker-a", 124, 2.5)
    assert [(pid, started) for _, pid, started in files.entries()] == [(123, 1.5), (124, 2.5)]
    files.remove("c1", "scheduler")
    assert [pid for _, pid, _ in files.entries()] == [124]
    assert oct((tmp_path / "pids").stat().st_mode & 0o777) == "0o700"


def test_stop_local_clusters_stops_what_the_pid_files_name(tmp_path):
    from deploy.gateway.local import stop_local_clusters

    log = str(tmp_path / "out.log")
    pid, started = asyncio.run(processes.spawn_detached(SLEEPER, dict(os.environ), str(tmp_path), log))
    try:
        processes.PidFiles(tmp_path / "gateway" / "pids").add("c1", "scheduler", pid, started)
        assert stop_local_clusters(tmp_path) == [pid]
        assert not alive(pid)
        assert not list((tmp_path / "gateway" / "pids").iterdir())
    finally:
        kill_tree(pid)

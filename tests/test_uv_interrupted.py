"""`deploy.environments.uv.run` tells a uv that was stopped by a signal (its service
restarting: systemd sends SIGTERM) from a uv that failed on its own: the first is
`interrupted`, so the gateway says "start the cluster again" rather than blaming the
wheels. A real uv, asking a real (loopback) package index that never answers, is sent a
real SIGTERM by PID; nothing is mocked."""

from __future__ import annotations

import os
import secrets
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deploy.environments import syncbuild, uv


class _SilentIndex:
    """A package index on 127.0.0.1 that holds every request until closed."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.closing = threading.Event()
        index = self

        class Holding(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.asked.set()
                index.closing.wait(60)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Holding)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def _children_with(marker: str) -> list[int]:
    """PIDs of this process's children whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parent = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        if parent == str(os.getpid()) and marker in command:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("streamed", [False, True], ids=["captured", "streamed"])
def test_a_uv_killed_by_a_signal_is_interrupted(tmp_path, streamed):
    index = _SilentIndex()
    marker = secrets.token_hex(8)  # in the index URL: finds this test's uv among the processes
    arguments = ("pip", "install", "--no-cache", "--target", str(tmp_path / "target"),
                 "--index-url", f"{index.url}/{marker}/simple", "graticule-probe-package")
    lines: list[str] = []
    pool = ThreadPoolExecutor(1)
    try:
        running = pool.submit(uv.run, *arguments, on_line=lines.append if streamed else None)
        assert index.asked.wait(120), "uv never asked the index"
        (pid,) = _children_with(marker)
        os.kill(pid, signal.SIGTERM)
        with pytest.raises(uv.UvError) as raised:
            running.result(timeout=120)
    finally:
        for pid in _children_with(marker):  # still there only if the test failed
            os.kill(pid, signal.SIGKILL)
        index.close()
        pool.shutdown(wait=True)
    assert raised.value.interrupted
    assert "uv pip was stopped by SIGTERM" in str(raised.value)


def test_a_uv_that_fails_on_its_own_is_not_interrupted(tmp_path):
    with pytest.raises(uv.UvError) as raised:
        uv.run("pip", "install", "--offline", "--no-index", "--target", str(tmp_path / "target"),
               "graticule-probe-package")
    assert not raised.value.interrupted
    assert "graticule-probe-package" in str(raised.value)


def test_raise_if_interrupted_tells_an_interrupted_uv_from_a_refused_set():
    """The translation both sync builds use (deploy.environments.syncbuild and
    deploy.vm.synced_for_machines): an interrupted uv is a SyncBuildError the SDK starts
    again, a uv that failed on its own is left to the caller's message."""
    with pytest.raises(syncbuild.SyncBuildError) as raised:
        syncbuild.raise_if_interrupted(uv.UvError("uv pip was stopped by SIGTERM", interrupted=True))
    assert raised.value.interrupted
    assert str(raised.value) == f"{syncbuild.INTERRUPTED}: uv pip was stopped by SIGTERM"
    assert raised.value.__suppress_context__
    syncbuild.raise_if_interrupted(uv.UvError("no version of syncextra"))  # refused: nothing raised

"""The dead-man switch's watchdog program and wrapper, on this machine (no simulator, no root).

The watchdog runs as it does on a VM (`python3 deadman.py URL AFTER EVERY`), against real
HTTP servers on loopback; `poweroff` on its PATH is a stub that records the call, since
this machine must not power off. The full path (a VM terminating itself) is in
tests/test_deadman.py, in the machine simulator.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deploy.cloud.deadman import UNIT, WATCHDOG, DeadMan, with_deadman
from tests.support.procs import free_port, kill_tree

AFTER, EVERY = 1.0, 0.2


@contextlib.contextmanager
def _server(status: int):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/health"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _watchdog(tmp_path, name: str, url: str):
    """The watchdog with a `poweroff` stub first on PATH; yields the file the stub writes."""
    bin_dir, marker = tmp_path / f"{name}-bin", tmp_path / f"{name}-powered-off"
    bin_dir.mkdir()
    stub = bin_dir / "poweroff"
    stub.write_text(f"#!/bin/sh\necho poweroff >> {marker}\n")
    stub.chmod(0o755)
    program = tmp_path / f"{name}-deadman.py"
    program.write_text(WATCHDOG)
    proc = subprocess.Popen([sys.executable, str(program), url, str(AFTER), str(EVERY)],
                            env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        yield marker, proc
    finally:
        kill_tree(proc.pid)
        proc.wait(timeout=10)


def _until_exists(path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{path} not written within {timeout} s")


@pytest.mark.parametrize("dead", ["refused", "503"])
def test_a_hub_that_does_not_answer_powers_the_machine_off_one_that_answers_does_not(tmp_path, dead):
    with _server(404) as answering, _server(503) as failing:  # a 404 is the hub talking; a 503 is not
        dead_url = failing if dead == "503" else f"http://127.0.0.1:{free_port()}/health"
        # The answering one starts first, so it has run longer when the other powers off.
        with _watchdog(tmp_path, "kept", answering) as (kept, kept_proc), \
                _watchdog(tmp_path, "orphan", dead_url) as (orphan, _):
            _until_exists(orphan)
            assert not kept.exists() and kept_proc.poll() is None


def test_the_wrapper_is_a_shell_script_that_runs_the_machine_user_data_last(tmp_path):
    script = with_deadman("#!/usr/bin/python3\nprint('mine')\n", DeadMan("http://10.0.0.5:8000/api/health"))
    checked = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    if shutil.which("shellcheck"):
        linted = subprocess.run(["shellcheck", "-s", "sh", "-"], input=script, capture_output=True, text=True)
        assert linted.returncode == 0, linted.stdout
    assert f"systemctl enable --now {UNIT}" in script and "/api/health 900 30" in script  # 15 min by default
    assert script.rstrip().endswith("exec /var/lib/graticule/user-data")
    assert with_deadman("#!/bin/sh\n", DeadMan("https://hub")) == with_deadman("#!/bin/sh\n", DeadMan("https://hub"))
    assert "exec " not in with_deadman("", DeadMan("https://hub"))


def test_what_the_switch_refuses():
    with pytest.raises(ValueError, match="script"):
        with_deadman("#cloud-config\nruncmd: []\n", DeadMan("https://hub"))
    with pytest.raises(ValueError, match="http"):
        DeadMan("10.0.0.5:8000")
    with pytest.raises(ValueError, match="positive"):
        DeadMan("https://hub", after_seconds=0)

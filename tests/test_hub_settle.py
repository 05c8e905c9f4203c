"""The cloud e2e harnesses' settling after an apply (tests/support/hub_settle.py), on a hub
stand-in: a config-sync log and VERSION file in memory, the gateway's health on a real
local HTTP server. The clouds' harnesses use it with their real hubs (tests/test_*_e2e.py).
"""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.hub_settle import CONFIG_SYNC_LOG, INSTALLED_VERSION, SettlingApply

OLD, NEW = "a" * 64, "b" * 64


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/services/dask-gateway/api/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def front():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Hub(SettlingApply):
    """A hub whose config sync applies what was published on the `lag`-th look at its log."""

    def __init__(self, root: Path, front: str, installed: str, log: str, publishes: str, lag: int) -> None:
        self.root, self.front, self.text = root, front, ""
        self.installed, self.log, self.publishes, self.lag = installed, log, publishes, lag
        self.published = installed
        self.looks = 0

    def _apply(self) -> subprocess.CompletedProcess[str]:
        self.published = self.publishes
        return subprocess.CompletedProcess(["apply"], 0, "", "")

    def published_version(self) -> str:
        return self.published

    def hub_file(self, path: str) -> str | None:
        if path == INSTALLED_VERSION:
            return self.installed + "\n"
        assert path == CONFIG_SYNC_LOG
        self.looks += 1
        if self.looks == self.lag and self.published != self.installed:
            self.installed = self.published
            self.log += f"graticule: configuration {self.published[:12]} applied; restarted ['gateway']\n"
        return self.log

    def diagnose(self, instance: str) -> str:
        return f"the log of {instance}:\n{self.log}"

    def hub_instance(self) -> str:
        return "hub"


def test_an_apply_waits_for_a_line_written_after_it_even_when_the_log_names_the_version_already(tmp_path, front):
    # The hub booted with NEW, then ran OLD; re-applying NEW must not take the first boot's line.
    first_boot = f"graticule: configuration {NEW[:12]} applied; restarted []\n"
    hub = _Hub(tmp_path, front, installed=OLD, log=first_boot, publishes=NEW, lag=3)
    hub.apply("name: changed\n")
    assert hub.looks >= 3 and hub.installed == NEW  # returned only once the new line was there
    assert hub.log.count(f"configuration {NEW[:12]} applied") == 2
    assert (tmp_path / "platform.yaml").read_text() == hub.text == "name: changed\n"


def test_an_apply_that_publishes_what_the_hub_runs_returns_at_once(tmp_path, front):
    hub = _Hub(tmp_path, front, installed=NEW, log="", publishes=NEW, lag=1)
    hub.apply()
    assert hub.looks == 1  # the offset, read before the apply; nothing waited for


def test_a_hub_that_never_applies_fails_the_wait_with_its_diagnosis(tmp_path, front):
    hub = _Hub(tmp_path, front, installed=OLD, log="", publishes=NEW, lag=10**6)
    with pytest.raises(AssertionError, match=rf"did not apply {NEW[:12]} within 1 s\nthe log of hub"):
        hub._apply()
        hub.settle(OLD, 0, timeout=1)

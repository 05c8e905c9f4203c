"""Headless Debian Chromium driven by Playwright, and the hub pages every browser test walks.

    with chromium() as browser:
        page = new_page(browser)
        log_in(page, hub_url, "alice", "alice's first password")

Screenshots go to ARTIFACTS (tests/artifacts/, git-ignored), kept as test artifacts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

# Slow machines: wait long, but only for a named UI state, never a fixed sleep.
UI_TIMEOUT_MS = 60_000
SPAWN_TIMEOUT_MS = 240_000


@contextlib.contextmanager
def chromium() -> Iterator:
    """A Playwright Browser on Debian's Chromium, closed on exit."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, **options):
    page = browser.new_page(**options)
    page.set_default_timeout(UI_TIMEOUT_MS)
    return page


def log_in(page, hub_url: str, user: str, password: str) -> None:
    """Submit the hub's login form and wait until the hub has taken it."""
    page.goto(f"{hub_url}/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("input[type=submit], button[type=submit]")
    assert "/hub/login" not in page.url, f"{user} was not logged in: {page.url}"


def wait_for_jupyterlab(page) -> None:
    """Wait (spawn included) until JupyterLab's shell and launcher are on the page."""
    page.wait_for_url("**/lab**", timeout=SPAWN_TIMEOUT_MS)
    page.wait_for_selector("#jp-main-dock-panel", timeout=SPAWN_TIMEOUT_MS)
    page.wait_for_selector(".jp-Launcher, .jp-LauncherCard", timeout=SPAWN_TIMEOUT_MS)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


class KernelReplies:
    """Counts the kernel_info_replies a page receives on its kernel websockets.

    A new notebook's execution indicator reads "idle" before any kernel session exists
    (its default state), and a cell run then is silently not executed (JupyterLab clears
    it: no kernel). The kernel's own reply on the channels websocket is the real signal
    that it is connected; counting across sockets covers JupyterLab's reconnects. Create
    this before opening the notebook so the first socket is seen.
    """

    def __init__(self, page) -> None:
        self.count = 0
        self._page = page
        page.on("websocket", self._watch)

    def _watch(self, socket) -> None:
        if "/channels" in socket.url:
            socket.on("framereceived", self._frame)

    def _frame(self, payload: str | bytes) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        if b"kernel_info_reply" in data:
            self.count += 1

    def wait(self, timeout_ms: int = SPAWN_TIMEOUT_MS) -> None:
        deadline = time.monotonic() + timeout_ms / 1000
        while not self.count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no kernel_info_reply from the notebook's kernel in {timeout_ms // 1000} s")
            self._page.wait_for_timeout(100)  # lets Playwright deliver the websocket events

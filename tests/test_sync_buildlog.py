"""The gateway's build log (deploy.gateway.sync_api.BuildLog): written from a build thread,
read by long polls that wake when a line comes, never before; cut at a bound."""

from __future__ import annotations

import asyncio
import threading

from deploy.gateway import sync_api
from deploy.gateway.sync_api import BuildLog


def test_a_waiting_reader_wakes_on_the_threads_lines_in_order_then_the_end():
    async def scenario() -> list[dict]:
        log = BuildLog(asyncio.get_running_loop())
        go = threading.Event()

        def build_thread() -> None:
            go.wait()
            log.step("installing 2 packages")
            log.line(" + a==1\n")
            log.line(" + b==2")

        thread = threading.Thread(target=build_thread)
        thread.start()
        waiting = asyncio.create_task(log.wait_past(0, timeout=300))
        await asyncio.sleep(0)  # the reader is waiting now; nothing was written yet
        assert not waiting.done() and log.page(0)["entries"] == []
        go.set()  # only now may the thread write
        await waiting
        await asyncio.to_thread(thread.join)
        await asyncio.sleep(0)  # the thread's last call_soon_threadsafe callbacks
        pages = [log.page(0)]
        log.finish(report={"python": "3.11.7", "installed": {"a": "1", "b": "2"}})
        await log.wait_past(3, timeout=300)  # returns at once: the build ended
        pages.append(log.page(3))
        return pages

    building, built = asyncio.run(scenario())
    assert [(e["text"], e["step"]) for e in building["entries"]] == [
        ("installing 2 packages", True), (" + a==1", False), (" + b==2", False)]
    assert building["state"] == "building" and building["next"] == 3
    assert built == {"entries": [], "next": 3, "state": "built",
                     "report": {"python": "3.11.7", "installed": {"a": "1", "b": "2"}}}


def test_a_failed_build_says_why_and_a_long_log_is_cut(monkeypatch):
    monkeypatch.setattr(sync_api, "MAX_ENTRIES", 3)

    async def scenario() -> dict:
        log = BuildLog(asyncio.get_running_loop())
        for number in range(10):
            log.line(f"line {number}")
        await asyncio.sleep(0)
        log.finish(error="uv could not build the environment: error: Failed to build `x==1`")
        return log.page(1)

    page = asyncio.run(scenario())
    assert [e["text"] for e in page["entries"]] == ["line 1", "line 2", "(the rest of the log is cut)"]
    assert page["state"] == "failed" and "Failed to build `x==1`" in page["error"] and "report" not in page

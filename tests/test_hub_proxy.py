"""The hub's proxy (deploy/local/http_proxy.py) as the platform starts it, a real process in
front of a real backend: many long requests at once pass through side by side, not queued
behind tornado's default 10 clients; websockets keep their subprotocol and binary frames."""

from __future__ import annotations

import asyncio
import collections
import resource
import subprocess
import sys

import aiohttp
import psutil

from deploy.local import http_proxy
from tests.support.hub_proxy import SUBPROTOCOL, HoldingBackend, concurrent_gets, running_proxy

CONCURRENT = 50  # five times tornado's default max_clients


def test_long_requests_pass_through_side_by_side(tmp_path):
    # Each request is held until all of them are in the backend at once: through a proxy
    # that forwards 10 at a time, 10 are held until `most_seconds` while the other 40 time
    # out in tornado's queue after 20 s (503).
    with HoldingBackend(release_at=CONCURRENT, most_seconds=25) as backend, \
            running_proxy(tmp_path / "state", backend.port) as proxy:
        answers = concurrent_gets(f"{proxy.url}/hold", CONCURRENT, timeout=60)
    assert backend.peak == CONCURRENT, f"the backend had at most {backend.peak} requests in flight at once"
    assert collections.Counter(a.status for a in answers) == {200: CONCURRENT}


def test_the_proxy_raises_its_open_files_limit(tmp_path):
    # systemd starts a hub VM's units with a soft limit of 1024 open files: too few for
    # thousands of forwarded requests (two sockets each).
    def systemd_like() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wanted = http_proxy.MOST_REQUESTS_IN_FLIGHT * http_proxy.FILES_PER_SLOT
    with HoldingBackend(release_at=1, most_seconds=5) as backend, \
            running_proxy(tmp_path / "state", backend.port, preexec_fn=systemd_like) as proxy:
        soft = psutil.Process(proxy.pid).rlimit(psutil.RLIMIT_NOFILE)[0]
    assert soft == (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard))


def test_request_slots_fit_the_open_files_limit():
    # Where the hard limit is low, fewer slots (requests then queue) rather than running out
    # of files mid-request.
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 400))

    slots = subprocess.run(
        [sys.executable, "-c", "from deploy.local.http_proxy import request_slots; print(request_slots())"],
        preexec_fn=low_limit, capture_output=True, text=True, check=True).stdout
    assert int(slots) == 400 // http_proxy.FILES_PER_SLOT


def test_websockets_keep_the_targets_subprotocol_and_binary_frames(tmp_path):
    async def talk(url: str) -> tuple[str | None, list[tuple[aiohttp.WSMsgType, object]]]:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(url, protocols=("other", SUBPROTOCOL)) as socket:
            await socket.send_bytes(b"\x00\x01binary")
            binary = await socket.receive(timeout=30)
            await socket.send_str("text")
            text = await socket.receive(timeout=30)
            return socket.protocol, [(binary.type, binary.data), (text.type, text.data)]

    with HoldingBackend(release_at=1, most_seconds=5) as backend, \
            running_proxy(tmp_path / "state", backend.port) as proxy:
        chosen, echoed = asyncio.run(talk(f"{proxy.url.replace('http', 'ws', 1)}/echo"))
    assert chosen == SUBPROTOCOL
    assert echoed == [(aiohttp.WSMsgType.BINARY, b"\x00\x01binary"), (aiohttp.WSMsgType.TEXT, "text")]

"""The hub's proxy as the platform starts it, in front of a small real backend.

`HoldingBackend` is an aiohttp server on a loopback port (in a thread of the test) that
holds each `GET /hold` until `release_at` requests are in flight at once, or `most_seconds`
have passed, and counts how many it held at once; `/echo` is a websocket echo that picks
a subprotocol and keeps binary frames binary. `running_proxy` starts the proxy with
`deploy.runtime.components.PROXY`'s command and environment, its default target (the
hub's address) pointed at the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from deploy.runtime.addresses import PORT_NAMES, Runtime
from deploy.runtime.components import PROXY
from deploy.runtime.state import Layout
from tests.support.procs import free_port, started, wait_for_http

REPO = Path(__file__).resolve().parents[2]
SUBPROTOCOL = "graticule.test.v1"
# configurable-http-proxy as upstream runs it: tornado's default client (max_clients 10),
# no websocket fixes. The benchmark's baseline.
UPSTREAM_PROXY = [sys.executable, "-c", "from configurable_http_proxy import cli; cli.main()"]


class HoldingBackend:
    def __init__(self, release_at: int, most_seconds: float) -> None:
        self.release_at = release_at
        self.most_seconds = most_seconds
        self.in_flight = 0
        self.peak = 0  # the most requests it held at once
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._all_in: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None

    async def _hold(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= self.release_at:
            self._all_in.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_in.wait(), self.most_seconds)
        finally:
            self.in_flight -= 1
        return web.json_response({"peak": self.peak})

    async def _echo(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(protocols=(SUBPROTOCOL,))
        await socket.prepare(request)
        async for message in socket:
            if message.type == web.WSMsgType.TEXT:
                await socket.send_str(message.data)
            elif message.type == web.WSMsgType.BINARY:
                await socket.send_bytes(message.data)
        return socket

    async def _start(self) -> None:
        self._all_in = asyncio.Event()
        app = web.Application()
        app.router.add_get("/hold", self._hold)
        app.router.add_get("/echo", self._echo)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def __enter__(self) -> HoldingBackend:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


@dataclass(frozen=True)
class RunningProxy:
    url: str  # the public side
    pid: int


@contextlib.contextmanager
def running_proxy(state_dir: Path, target_port: int, command: list[str] | None = None,
                  **popen) -> Iterator[RunningProxy]:
    """The proxy as the platform starts it, its default target at `target_port`; stopped
    (by PID) on the way out. `command` replaces the program (arguments stay the platform's)."""
    ports = {**{name: free_port() for name in PORT_NAMES}, "hub": target_port}
    runtime = Runtime(Layout(state_dir), ports)
    runtime.layout.run.mkdir(parents=True, exist_ok=True)
    args = PROXY.command(runtime)
    if command is not None:
        args = [*command, *args[3:]]  # past `python -m deploy.local.http_proxy`
    environment = PROXY.environment(runtime)
    # this checkout's deploy/, not the system-wide install's
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    log = (runtime.layout.run / "proxy.log").open("wb")
    with log, started(args, env=environment, cwd=runtime.layout.run,
                      stdout=log, stderr=subprocess.STDOUT, **popen) as proc:
        wait_for_http(f"{runtime.hub_url}/_chp_healthz", proc=proc)
        yield RunningProxy(runtime.hub_url, proc.pid)


@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float


async def _get(session: ClientSession, url: str) -> Answer:
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        async with session.get(url) as response:
            await response.read()
            return Answer(response.status, loop.time() - began)
    except (OSError, TimeoutError):
        return Answer(0, loop.time() - began)  # no answer at all


def concurrent_gets(url: str, count: int, timeout: float) -> list[Answer]:
    """`count` GETs of `url`, all sent at once (no client-side limit), each given `timeout`."""
    async def send() -> list[Answer]:
        async with ClientSession(connector=TCPConnector(limit=0), timeout=ClientTimeout(total=timeout)) as session:
            return await asyncio.gather(*(_get(session, url) for _ in range(count)))
    return asyncio.run(send())

"""Many dashboards open at once through the gateway's dashboard forwarder
(deploy/gateway/dashboards.py): each open dashboard holds a websocket to its scheduler for as
long as the page is open (a Bokeh document per tab or JupyterLab panel), so the forwarder's
own HTTP client must not cap them, nor make the next page and token check wait behind them.

The forwarder runs for real on a loopback port, in front of a real aiohttp server standing in
for a scheduler's Bokeh dashboard; the gateway's cluster table is a stand-in (one cluster,
owned by alice) and alice's browser session is one the forwarder issued (no hub runs here:
the login itself is tested end to end in tests/test_laptop_e2e.py)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import aiohttp
from aiohttp import web

from deploy.gateway.dashboards import SESSION_COOKIE, DashboardAccess
from tests.support.procs import free_port

OPEN_DASHBOARDS = 120  # past aiohttp's default 100 connections per client session
WAIT = aiohttp.ClientTimeout(total=20)  # a stuck connection fails the test rather than hanging it


async def _dashboard(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return web.Response(text="dashboard page")
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for message in socket:
        await socket.send_str(message.data)
    return socket


async def _serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _open_many_then_browse() -> tuple[int, list[str], str]:
    scheduler_app = web.Application()
    scheduler_app.router.add_route("*", "/{tail:.*}", _dashboard)
    scheduler_port, gateway_port = free_port(), free_port()
    cluster = SimpleNamespace(username="alice", dashboard_address=f"http://127.0.0.1:{scheduler_port}")
    backend = SimpleNamespace(db=SimpleNamespace(get_cluster=lambda name: cluster if name == "c1" else None))
    access = DashboardAccess(backend, hub_api_url="http://127.0.0.1:9/hub/api", service_token="unused",
                             service_name="dask-gateway", prefix="/services/dask-gateway")
    access.sessions["alice-session"] = ("alice", time.time() + 3600)
    gateway_app = web.Application()
    access.add_routes(gateway_app)
    runners = [await _serve(scheduler_app, scheduler_port), await _serve(gateway_app, gateway_port)]
    url = f"http://127.0.0.1:{gateway_port}/clusters/c1"
    headers = {"Cookie": f"{SESSION_COOKIE}=alice-session"}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=WAIT) as browser:
            sockets = []
            try:
                for _ in range(OPEN_DASHBOARDS):
                    try:
                        sockets.append(await browser.ws_connect(f"{url}/status/ws", headers=headers))
                    except TimeoutError:
                        return len(sockets), [], ""  # the next one waits behind the open ones
                echoes = []
                for number, socket in enumerate(sockets):
                    await socket.send_str(f"tab {number}")
                    echoes.append((await socket.receive(timeout=20)).data)
                async with browser.get(f"{url}/status", headers=headers) as page:
                    text = await page.text()
            finally:
                await asyncio.gather(*(socket.close() for socket in sockets))
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
    return len(sockets), echoes, text


def test_many_open_dashboards_do_not_block_the_next(tmp_path):
    opened, echoes, page = asyncio.run(_open_many_then_browse())
    assert opened == OPEN_DASHBOARDS, f"dashboard {opened + 1} did not open while {opened} were open"
    assert echoes == [f"tab {number}" for number in range(OPEN_DASHBOARDS)]
    assert page == "dashboard page"

"""A cluster's machines ask the machine-secret broker (deploy/gateway/machine_secret_broker.py)
for their secret at once, as they boot together: their requests run side by side, in threads of
the broker's own, not a few at a time in the loop's default executor, which the gateway's other
blocking work (budget admission, launches) needs meanwhile.

Real parts as in tests/test_machine_secret_broker.py: the Secret Manager fake, the fake Compute
API, the broker's routes in a real aiohttp server, tokens signed as the simulator's metadata
server signs them. The fake Compute API holds every instances.get until the test releases it,
and counts how many it holds at once (no clock involved)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import aiohttp

from deploy.gateway.machine_secret_broker import BROKER_THREADS
from tests.support.machine_secret_broker import (
    VALUES,
    broker_of,
    broker_server,
    metadata_token,
)

MACHINES = BROKER_THREADS  # five times the default executor's threads on 2 cores


async def _ask_while_held(broker, held, tokens: list[str]) -> tuple[bool, str | None, list[int]]:
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1) as watcher:  # not the default executor: on main the broker fills it
        async with broker_server(broker) as url, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            async def one(token: str) -> int:
                async with session.get(f"{url}/machine-secret/cluster-big",
                                       headers={"Authorization": f"Bearer {token}"}) as response:
                    return response.status

            asks = asyncio.gather(*(one(token) for token in tokens))
            try:
                all_held = await loop.run_in_executor(watcher, held.reached, len(tokens), 30)
                try:  # the gateway's own blocking work still gets a thread
                    free = await asyncio.wait_for(asyncio.to_thread(lambda: "a thread"), 10)
                except TimeoutError:
                    free = None
            finally:
                held.release()
            return all_held, free, list(await asyncio.wait_for(asks, 120))


def test_a_booting_cluster_asks_side_by_side(broker_secrets, broker_issuer, broker_fleet):
    broker_secrets.put("cluster-big", VALUES, tags={"cluster": "big", "user": "alice"})
    machines = broker_fleet.launch("oceanlab-big-w", count=MACHINES, cluster="big", role="worker", user="alice")
    broker_secrets.allow("cluster-big", [m["name"] for m in machines])
    tokens = [metadata_token(broker_issuer, m) for m in machines]
    held = broker_fleet.compute.hold("compute.instances.get")
    broker = broker_of(broker_secrets, broker_issuer, broker_fleet)
    all_held, free, statuses = asyncio.run(_ask_while_held(broker, held, tokens))
    assert all_held, f"at most {held.most} of {MACHINES} machines' requests reached Compute at once"
    assert free == "a thread"
    assert statuses == [200] * MACHINES

"""Coalescing the gateway's per-worker launches into batches.

dask-gateway calls `do_start_worker` once per worker, all of a scale-up at about the same
time. Calls for the same key (one cluster's identical machines) arriving within `window`
seconds share one `launch_batch` (one RunInstances for up to `max_batch` machines); each
caller gets its own machine of the batch. The batch is named after its first caller's
machine name, which is unique, so its ClientToken never matches an earlier batch's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

from deploy.cloud.machines import Machine, MachineSpec

DEFAULT_WINDOW = 0.2  # seconds: a scale-up's calls arrive within milliseconds of each other
DEFAULT_MAX_BATCH = 100


class LaunchBatcher:
    def __init__(self, launch_batch: Callable[[MachineSpec], list[Machine]], window: float = DEFAULT_WINDOW,
                 max_batch: int = DEFAULT_MAX_BATCH,
                 launched: Callable[[str, list[Machine]], Awaitable[None]] | None = None) -> None:
        """`launched(key, machines)` runs once per batch before its callers get their machines."""
        self._launch_batch, self.window, self.max_batch = launch_batch, window, max_batch
        self._launched = launched
        self._pending: dict[str, tuple[MachineSpec, list[asyncio.Future]]] = {}

    async def launch(self, key: str, spec: MachineSpec) -> Machine:
        """One machine of `spec`, launched with the other calls for `key` in this window."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        if key in self._pending:
            self._pending[key][1].append(future)
        else:
            self._pending[key] = (spec, [future])
            loop.call_later(self.window, lambda: asyncio.ensure_future(self._flush(key)))
        return await future

    async def _flush(self, key: str) -> None:
        spec, futures = self._pending.pop(key)
        chunks = [futures[start:start + self.max_batch] for start in range(0, len(futures), self.max_batch)]
        await asyncio.gather(*(self._launch(key, spec, chunk, number) for number, chunk in enumerate(chunks)))

    async def _launch(self, key: str, spec: MachineSpec, futures: list[asyncio.Future], number: int) -> None:
        name = spec.name if number == 0 else f"{spec.name[:60]}-{number}"
        try:
            machines = await asyncio.to_thread(self._launch_batch, replace(spec, name=name, count=len(futures)))
            if self._launched is not None:
                await self._launched(key, machines)
        except Exception as exc:
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, machine in zip(futures, machines, strict=True):
            if not future.done():  # a caller cancelled (its start timed out): the reaper ends its machine
                future.set_result(machine)

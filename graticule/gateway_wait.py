"""Waiting out a restarting gateway.

A re-apply that changes the gateway's files restarts it on the hub; meanwhile the hub's
proxy (or the cloud's load balancer) answers 502, 503 or 504. A cluster start or a status
poll that meets one is tried again, with backoff, for a bounded time (`DEFAULT_WAIT`
seconds from the first refusal of an outage; a call that gets through starts the count
anew), after one line on stderr that says so; past the bound, GatewayUnavailable.

A gateway that has just started answers 404 with a plain "Not Found" for a moment: its own
proxy is up before it has the route to its API. The API's refusals are JSON
(`{"error": ...}`), so a 404 without one is waited out the same way.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from graticule.errors import GatewayUnavailable

RETRIED = frozenset({502, 503, 504})
UNROUTED = "Not Found"  # the text of a starting gateway's 404, not JSON
DEFAULT_WAIT = 60.0  # seconds: a gateway restart takes a few
FIRST_PAUSE, MAX_PAUSE = 0.5, 5.0
T = TypeVar("T")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class GatewayWait:
    """How long to wait for `address` while it refuses with RETRIED, and the pauses between
    tries. `say` gets the one line printed when an outage begins."""

    def __init__(self, address: str, bound: float = DEFAULT_WAIT, say: Callable[[str], None] = _to_stderr) -> None:
        if bound < 0:
            raise ValueError("gateway_wait must be 0 or more seconds")
        self.address, self.bound, self.say = address, float(bound), say
        self._since: float | None = None
        self._pause = FIRST_PAUSE

    def pause(self, status: int) -> float:
        """Seconds to sleep before the next try after `status`; GatewayUnavailable past the bound."""
        now = time.monotonic()
        if self._since is None:
            self._since = now
            if self.bound > 0:
                self.say(f"graticule: the gateway at {self.address} answered HTTP {status} (restarting?); "
                         f"waiting up to {self.bound:.0f} s for it")
        left = self._since + self.bound - now
        if left <= 0:
            raise GatewayUnavailable(
                f"the gateway at {self.address} still answered HTTP {status} after {self.bound:.0f} s; "
                "try again in a while (a platform change may be under way), or ask the platform's admins")
        pause, self._pause = min(self._pause, left), min(self._pause * 2, MAX_PAUSE)
        return pause

    def answered(self) -> None:
        """A call got through: the next refusal begins a new outage."""
        self._since, self._pause = None, FIRST_PAUSE

    async def call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()` (a dask-gateway request), again while the gateway answers RETRIED."""
        import aiohttp

        while True:
            try:
                result = await attempt()
            except aiohttp.ClientResponseError as exc:
                if exc.status not in RETRIED:
                    raise
                status = exc.status
            except ValueError as exc:  # dask-gateway's 404 and 422, the answer's text as the message
                if str(exc).strip() != UNROUTED:
                    raise
                status = 404
            else:
                self.answered()
                return result
            await asyncio.sleep(self.pause(status))  # outside the except: GatewayUnavailable chains nothing


def waited_out(status: int, json_error: bool) -> bool:
    """Whether a refusal is the gateway restarting (tried again), not the API's answer."""
    return status in RETRIED or (status == 404 and not json_error)

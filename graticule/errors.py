"""The SDK's exceptions, and the one place gateway errors are translated into them.

dask-gateway reports most refusals as a 422 whose text is the server's message (the
client raises ValueError), an unknown token as 401 and someone else's cluster as 403.
Users see one plain line, not aiohttp's exception chain.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from graticule import _env


class GraticuleError(Exception):
    """Base class of every error the SDK raises on purpose."""


class AuthError(GraticuleError):
    """No usable credentials, or the hub refused them."""


class NotAllowed(GraticuleError, PermissionError):
    """A profile, environment or cluster this user may not use."""


class BudgetExceeded(GraticuleError):
    """The user's budget cannot cover the request (the message says spent, limit, reset)."""


class ClusterNotFound(GraticuleError, LookupError):
    """No cluster of this user has that name."""


class SyncError(GraticuleError):
    """Package sync could not reproduce this environment on the cluster."""


class GatewayUnavailable(GraticuleError):
    """The gateway kept answering 502/503/504 (restarting) for longer than the SDK waits."""


_BUDGET_REFUSAL = re.compile(r"budget '[^']*' refused|budget is exhausted", re.IGNORECASE)
_NOT_ALLOWED = re.compile(
    r"not allowed|not granted|may not|has no budget|permission|forbidden|invalid value for|"
    r"is not one of|unknown (profile|environment)",
    re.IGNORECASE,
)
_BUDGET = re.compile(r"\bbudget\b|\bmax_cores\b", re.IGNORECASE)
_NOT_FOUND = re.compile(r"not found", re.IGNORECASE)


def classify(message: str) -> GraticuleError:
    """The exception for a refusal message from the gateway."""
    if _BUDGET_REFUSAL.search(message):
        return BudgetExceeded(message)
    if _NOT_ALLOWED.search(message):
        return NotAllowed(message)
    if _BUDGET.search(message):
        return BudgetExceeded(message)
    if _NOT_FOUND.search(message):
        return ClusterNotFound(message)
    return GraticuleError(message)


def for_status(status: int, message: str, address: str) -> GraticuleError:
    if status == 401:
        return AuthError(
            f"the gateway at {address} did not accept your token; "
            f"run graticule.login(HUB_URL) again (or check {_env.TOKEN})"
        )
    if status == 403:
        return NotAllowed(message or "the gateway refused access")
    if status == 404:
        return ClusterNotFound(message or "not found")
    return classify(message or f"the gateway answered HTTP {status}")


@contextlib.contextmanager
def translated(address: str) -> Iterator[None]:
    """Turn dask-gateway/aiohttp errors raised in the block into the SDK's exceptions."""
    import aiohttp
    from dask_gateway.client import GatewayClusterError, GatewayServerError

    try:
        yield
    except GraticuleError:
        raise
    except aiohttp.ClientResponseError as exc:
        raise for_status(exc.status, exc.message, address) from None
    except aiohttp.ClientConnectionError as exc:
        raise GraticuleError(f"cannot reach the gateway at {address}: {exc}") from None
    except (GatewayClusterError, GatewayServerError) as exc:
        raise classify(str(exc)) from None
    except ValueError as exc:  # dask-gateway's 404/422: the text is the server's message
        raise classify(str(exc)) from None

"""One boto3 client per service and region for a long-lived process (the hub).

Making a client loads botocore's service model: seconds of CPU on a busy machine, and a
process that makes one per request (a spawner per server start) stalls its event loop.
boto3's clients are thread-safe, so one each is shared; callers make them in a worker
thread, never on an event loop.
"""

from __future__ import annotations

import threading
from typing import Any

from deploy.cloud.machines import MachinesError

_CLIENTS: dict[tuple[str, str, str | None], Any] = {}
_LOCK = threading.Lock()


def shared_client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    with _LOCK:
        key = (service, region, endpoint_url)
        if key not in _CLIENTS:
            # Retries are the callers' (deploy.cloud.aws moves on from a capacity error itself).
            _CLIENTS[key] = new_client(service, region, endpoint_url, single_attempt=service == "ec2")
        return _CLIENTS[key]


def new_client(service: str, region: str, endpoint_url: str | None = None, *, single_attempt: bool = False) -> Any:
    """A boto3 client of the caller's own (boto3 imported only now: the aws extra is optional).
    `single_attempt`: botocore retries nothing, the caller does."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise MachinesError("boto3 is not installed: pip install 'graticule[aws]'") from None
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}) if single_attempt else None
    return boto3.client(service, region_name=region, endpoint_url=endpoint_url, config=config)

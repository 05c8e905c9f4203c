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
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise MachinesError("boto3 is not installed: pip install 'graticule[aws]'") from None
            # Retries are the callers' (deploy.cloud.aws moves on from a capacity error itself).
            config = Config(retries={"mode": "standard", "total_max_attempts": 1}) if service == "ec2" else None
            _CLIENTS[key] = boto3.client(service, region_name=region, endpoint_url=endpoint_url, config=config)
        return _CLIENTS[key]

"""What a launched worker machine asks the gateway (deploy.gateway.vm_worker_launcher):

GET /api/graticule/v1/clusters/{cluster}/machines/{machine_id}?wait=S
    Authorization: token <the cluster's API token>  (from the machine's secret)
    -> {"worker": name or null, "scheduler_address": "" until the scheduler reported it,
        "stop": true when the cluster or that worker is stopping}

`wait` (at most 30 s) holds the answer until both are known, so a booting worker makes
one request, not a poll every second, while its scheduler starts beside it.
"""

from __future__ import annotations

import asyncio
import hmac
import time

from aiohttp import web
from dask_gateway_server.backends.db_base import JobStatus

MAX_WAIT = 30.0


def add_machine_routes(routes: web.RouteTableDef, prefix: str, backend) -> None:
    @routes.get(prefix + "/clusters/{cluster_name}/machines/{machine_id}")
    async def machine(request: web.Request) -> web.Response:
        cluster = backend.db.get_cluster(request.match_info["cluster_name"])
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if cluster is None or scheme != "token" or not hmac.compare_digest(token, cluster.token):
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "token"})
        try:
            wait = min(MAX_WAIT, max(0.0, float(request.query.get("wait", "0"))))
        except ValueError:
            raise web.HTTPBadRequest(reason="wait must be a number of seconds") from None
        deadline = time.monotonic() + wait
        while True:
            answer = machine_answer(cluster, request.match_info["machine_id"])
            if answer["stop"] or (answer["worker"] and answer["scheduler_address"]) or time.monotonic() >= deadline:
                return web.json_response(answer)
            await asyncio.sleep(0.25)


def machine_answer(cluster, machine_id: str) -> dict:
    if cluster.target > JobStatus.RUNNING:
        return {"worker": None, "scheduler_address": "", "stop": True}
    worker = next((w for w in cluster.workers.values() if (w.state or {}).get("machine_id") == machine_id), None)
    stopping = worker is not None and worker.target > JobStatus.RUNNING
    return {
        "worker": worker.name if worker is not None and not stopping else None,
        "scheduler_address": cluster.scheduler_address or "",
        "stop": stopping,
    }

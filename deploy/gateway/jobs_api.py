"""The SDK's jobs API, beside the rest of `/api/graticule/v1` (deploy.gateway.api):

- GET  /jobs: my runs, newest first; POST /jobs: submit a one-off run (a script,
  notebook or pickled callable, base64) that the jobs scheduler starts within seconds;
- POST /jobs/declared/NAME/run: an on-demand run of a declared job I own;
- GET  /jobs/RUN, /jobs/RUN/logs, /jobs/RUN/result; POST /jobs/RUN/cancel.
Owner only: another user's run answers 404, as if it did not exist. Runs live in the
usage database the gateway already has open (deploy.jobs.store).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import time
from pathlib import Path

from aiohttp import web
from dask_gateway_server.routes import api_handler

from deploy.jobs import store
from deploy.runtime import env
from render.job_spec import JOBS_FILE, RunSpec, load_jobs

KINDS = ("script", "notebook", "callable")
MAX_PAYLOAD = 64 * 1024 * 1024


def add_job_routes(routes: web.RouteTableDef, prefix: str, backend, read_json) -> None:
    def ledger():
        budgets = getattr(backend, "budgets", None)
        budgets = getattr(budgets, "budgets", budgets)
        if budgets is None or not hasattr(budgets, "ledger"):
            raise web.HTTPServiceUnavailable(reason="this gateway keeps no usage database, so no jobs")
        return budgets.ledger

    async def mine(request: web.Request):
        try:
            run_id = int(request.match_info["run"])
        except ValueError:
            raise web.HTTPNotFound(reason="no such run") from None
        row = await asyncio.to_thread(store.get, ledger(), run_id)
        if row is None or row.owner != request["user"].name:
            raise web.HTTPNotFound(reason=f"no run {run_id} of yours")
        return row

    @routes.get(prefix + "/jobs")
    @api_handler(user_authenticated=True)
    async def listing(request: web.Request) -> web.Response:
        runs = await asyncio.to_thread(store.runs, ledger(), request["user"].name)
        return web.json_response([run.as_dict() for run in runs])

    @routes.post(prefix + "/jobs")
    @api_handler(user_authenticated=True)
    async def submit(request: web.Request) -> web.Response:
        user = request["user"].name
        body = await read_json(request)
        spec, payload = _submission(backend.spec, user, body)
        run_id = await asyncio.to_thread(store.enqueue, ledger(), spec, "submitted", time.time(), payload)
        return web.json_response(store.summary(await asyncio.to_thread(store.get, ledger(), run_id)).as_dict(),
                                 status=201)

    @routes.post(prefix + "/jobs/declared/{name}/run")
    @api_handler(user_authenticated=True)
    async def run_declared(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        job = _declared().get(name)
        if job is None or job.spec.owner != request["user"].name:
            raise web.HTTPNotFound(reason=f"no job {name!r} of yours")
        run_id = await asyncio.to_thread(store.enqueue, ledger(), job.spec, "manual", time.time())
        return web.json_response(store.summary(await asyncio.to_thread(store.get, ledger(), run_id)).as_dict(),
                                 status=201)

    @routes.get(prefix + "/jobs/{run}")
    @api_handler(user_authenticated=True)
    async def one(request: web.Request) -> web.Response:
        return web.json_response(store.summary(await mine(request)).as_dict())

    @routes.get(prefix + "/jobs/{run}/logs")
    @api_handler(user_authenticated=True)
    async def logs(request: web.Request) -> web.Response:
        row = await mine(request)
        return web.json_response({"id": row.id, "status": row.status, "log": row.log})

    @routes.get(prefix + "/jobs/{run}/result")
    @api_handler(user_authenticated=True)
    async def result(request: web.Request) -> web.Response:
        row = await mine(request)
        if row.result is None:
            raise web.HTTPNotFound(reason=f"run {row.id} has no result (status {row.status})")
        return web.json_response({"name": row.result_name, "data": base64.b64encode(row.result).decode()})

    @routes.post(prefix + "/jobs/{run}/cancel")
    @api_handler(user_authenticated=True)
    async def cancel(request: web.Request) -> web.Response:
        row = await mine(request)
        asked = await asyncio.to_thread(store.request_cancel, ledger(), row.id)
        return web.json_response({"id": row.id, "cancel_requested": asked})


def _declared() -> dict:
    path = Path(os.environ.get(env.STATE_DIR, ".")) / "build" / JOBS_FILE
    try:
        return load_jobs(path.read_text())
    except (OSError, ValueError, KeyError):
        return {}


def _submission(spec, user: str, body: dict) -> tuple[RunSpec, bytes]:
    """The RunSpec of a submission, checked against what the user is granted (422 otherwise)."""
    grants = spec.grants_of(user)
    if grants is None:
        raise web.HTTPForbidden(reason=f"{user!r} is not a user of this platform")
    try:
        kind = str(body["kind"])
        name = str(body.get("name") or "submitted")[:100]
        payload = base64.b64decode(body["payload"], validate=True)
        profile = body.get("profile") or grants.default_profile
        environment = body.get("environment") or (grants.environments[0] if grants.environments else None)
        cluster = body.get("cluster")
        parameters = dict(body.get("parameters") or {})
        timeout_s, retries = int(body.get("timeout_s", 3600)), int(body.get("retries", 0))
        filename = Path(str(body.get("filename") or f"{name}.py")).name
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise web.HTTPUnprocessableEntity(reason=f"malformed submission: {exc}") from None
    problems = []
    if kind not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)}")
    if len(payload) > MAX_PAYLOAD:
        problems.append(f"the payload is over {MAX_PAYLOAD >> 20} MiB")
    if profile not in grants.profiles:
        problems.append(f"profile {profile!r} is not granted to you (granted: {', '.join(grants.profiles)})")
    if environment is not None and environment not in grants.environments:
        problems.append(f"environment {environment!r} is not granted to you")
    if cluster is not None:
        wanted = cluster if isinstance(cluster, dict) else {}
        cluster = {"profile": wanted.get("profile") or spec.dask.default_profile,
                   "workers": wanted.get("workers"), "adaptive": wanted.get("adaptive")}
        if cluster["profile"] not in grants.profiles:
            problems.append(f"cluster profile {cluster['profile']!r} is not granted to you")
    if not 1 <= timeout_s <= 7 * 86400 or not 0 <= retries <= 10:
        problems.append("timeout_s must be 1 s to 7 days and retries 0 to 10")
    if problems:
        raise web.HTTPUnprocessableEntity(reason="; ".join(problems))
    run = RunSpec(
        name=name, owner=user, kind=kind, path=None if kind == "callable" else filename, profile=profile,
        environment=environment, parameters=json.loads(json.dumps(parameters)), cluster=cluster,
        timeout_s=timeout_s, retries=retries, uploaded=True,
    )
    return run, payload

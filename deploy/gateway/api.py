"""The gateway's small JSON API for the SDK, beside dask-gateway's own `/api/v1`.

- GET  /api/graticule/v1/me: my profiles (cpu, memory, gpu, price per hour) and environments;
- GET  /api/graticule/v1/usage: my budget this month (spent, limit, cores in use);
- /api/graticule/v1/environments/sync...: package sync, its builds and their logs
  (deploy.gateway.sync_api);
- /api/graticule/v1/jobs...: my batch job runs (deploy.gateway.jobs_api);
- /api/graticule/v1/clusters/.../machines/..., /api/graticule/v1/machine-secret/...: what
  launched machines ask (deploy.gateway.machines_api, deploy.gateway.machine_secret_broker).
Authenticated like the rest of the gateway (JupyterHub tokens). A backend adds these in
its `setup(app)` with `add_routes(app, backend)`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

from aiohttp import web
from dask_gateway_server.routes import api_handler

from deploy.budgets.report import usage_report
from deploy.gateway.jobs_api import add_job_routes
from deploy.gateway.machine_secret_broker import add_machine_secret_routes
from deploy.gateway.machines_api import add_machine_routes
from deploy.gateway.sync_api import add_sync_routes
from render.gateway_spec import Grants

PREFIX = "/api/graticule/v1"
MAX_UPLOAD = 256 * 1024 * 1024


def add_routes(app: web.Application, backend) -> None:
    routes = web.RouteTableDef()

    @routes.get(PREFIX + "/me")
    @api_handler(user_authenticated=True)
    async def me(request: web.Request) -> web.Response:
        user = request["user"].name
        spec = backend.spec
        grants = spec.grants_of(user) or Grants([], None, [], False, None)
        # cpu, memory, gpu and the price per hour, as rendered into platform.json
        profiles = {name: asdict(spec.profiles[name]) for name in grants.profiles}
        return web.json_response({
            "user": user,
            "profiles": profiles,
            "default_profile": grants.default_profile,
            "environments": grants.environments,
            "budget": grants.budget,
        })

    @routes.get(PREFIX + "/usage")
    @api_handler(user_authenticated=True)
    async def usage(request: web.Request) -> web.Response:
        user = request["user"].name
        grants = backend.spec.grants_of(user)
        budget = grants.budget if grants else None
        return web.json_response(await asyncio.to_thread(_usage_of, backend, user, budget))

    # package sync and its build log; a backend whose machines install it elsewhere builds it its way
    add_sync_routes(routes, PREFIX, _read_json, getattr(backend, "build_synced", None))

    add_job_routes(routes, PREFIX, backend, _read_json)
    add_machine_routes(routes, PREFIX, backend)  # launched worker machines: who am I, where is my scheduler
    # GCP machines' secrets, to instances that prove who they are (none elsewhere: 404)
    add_machine_secret_routes(routes, PREFIX, lambda: getattr(backend, "secret_broker", None))
    app.router.add_routes(routes)


async def _read_json(request: web.Request) -> dict:
    # Wheels make bodies bigger than aiohttp's default 1 MiB for request.json().
    if (request.content_length or 0) > MAX_UPLOAD:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD, actual_size=request.content_length)
    try:
        body = json.loads(await request.content.read())
    except ValueError:
        raise web.HTTPUnprocessableEntity(reason="the request body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPUnprocessableEntity(reason="the request body must be a JSON object")
    return body


def _usage_of(backend, user: str, budget: str | None) -> dict:
    answer = {"user": user, "budget": budget, "spent_usd": None, "limit_usd": None, "cores_in_use": None}
    budgets = getattr(backend, "budgets", None)  # deploy.gateway.budgets.GatewayBudgets
    budgets = getattr(budgets, "budgets", budgets)  # its deploy.budgets.guard.Budgets
    if budgets is None or budget is None or not hasattr(budgets, "ledger"):
        return answer
    report = usage_report(budgets.ledger, budgets.policy, budget=budget)
    for entry in report["budgets"]:
        mine = next((row for row in entry["users"] if row["name"] == user), None)
        answer.update(
            spent_usd=entry["spent_usd"],
            limit_usd=entry["limit_usd"],
            percent=entry["percent"],
            cores_in_use=entry["cores_in_use"],
            max_cores=entry["max_cores"],
            my_spent_usd=mine["spent_usd"] if mine else 0.0,
            my_cores_in_use=mine["cores_in_use"] if mine else 0.0,
            resets_at=report["resets_at"],
        )
    if answer["limit_usd"] is None:
        rule = budgets.policy.budgets.get(budget)
        answer.update(spent_usd=0.0, limit_usd=rule.monthly_usd if rule else None, cores_in_use=0.0,
                      resets_at=report["resets_at"])
    return answer

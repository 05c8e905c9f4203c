"""The gateway's package-sync API: build a user's environment in the background, and let
the SDK follow the build's log while it runs.

- GET  PREFIX/environments/sync/KEY: my synced environment's report, 404 if not built;
- POST PREFIX/environments/sync: build it (body: key, python, requirements, wheels as
  base64, critical). With `"background": true` the answer comes at once: 202
  `{"state": "building"}`, or 200 `{"state": "built", "report": ...}` when it is built
  already. Without it the answer waits for the build and is the report (older SDKs);
- GET  PREFIX/environments/sync/KEY/log?offset=N&wait=S: the build's log entries from
  N on (`{"text", "elapsed", "step"}`), waiting up to S seconds (at most 30) for one to
  come; with `next` (the offset to ask next), `state` (building, built, failed) and the
  `error` (and `interrupted`: true when the build was stopped from outside, not refused)
  or the `report`. 404 when this user has no such build.
Every lookup is by the authenticated user's name: another user's key is simply not found.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from dask_gateway_server.routes import api_handler

from deploy.environments import runtime, syncbuild

MAX_ENTRIES = 5000  # per build: a runaway log is cut, not kept in the gateway's memory
MAX_WAIT = 30.0
MAX_FINISHED = 200  # finished builds whose logs are kept (the oldest go first)
log = logging.getLogger("graticule.gateway.sync")


class BuildLog:
    """One build's log: written from the build's thread, read by long-polling requests.

    Entries reach the list on the event loop (call_soon_threadsafe), in the order the
    thread wrote them and before the build's result, so a reader that sees the final
    state has seen every line."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._started = time.monotonic()
        self._changed = asyncio.Event()
        self.entries: list[dict] = []
        self.state = "building"
        self.error: str | None = None
        self.interrupted = False
        self.report: dict | None = None

    # -- from the build's thread (deploy.environments.build.Progress) ----------------------

    def step(self, title: str) -> None:
        self._post(title, step=True)

    def line(self, text: str) -> None:
        self._post(text.rstrip(), step=False)

    def _post(self, text: str, step: bool) -> None:
        entry = {"text": text, "elapsed": round(time.monotonic() - self._started, 2), "step": step}
        self._loop.call_soon_threadsafe(self._add, entry)

    # -- on the event loop -----------------------------------------------------------------

    def _add(self, entry: dict) -> None:
        if len(self.entries) < MAX_ENTRIES:
            self.entries.append(entry)
        elif len(self.entries) == MAX_ENTRIES:
            self.entries.append({**entry, "text": "(the rest of the log is cut)", "step": True})
        self._wake()

    def finish(self, report: dict | None = None, error: str | None = None, interrupted: bool = False) -> None:
        self.state, self.report, self.error = ("failed" if error else "built"), report, error
        self.interrupted = bool(error) and interrupted
        self._wake()

    def _wake(self) -> None:
        # Waiters hold the old event; a fresh one is for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_past(self, offset: int, timeout: float) -> None:
        """Until there is an entry at `offset` or the build ended, or `timeout` passed."""
        if len(self.entries) > offset or self.state != "building" or timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def page(self, offset: int) -> dict:
        answer = {"entries": self.entries[offset:], "next": len(self.entries), "state": self.state}
        if self.state == "failed":
            answer["error"] = self.error
            if self.interrupted:
                answer["interrupted"] = True
        elif self.state == "built":
            answer["report"] = self.report
        return answer


@dataclass
class Build:
    log: BuildLog
    task: asyncio.Task | None = field(default=None, repr=False)


class SyncBuilds:
    """The builds this gateway ran or runs, per (user, key): one at a time for each.

    builder: `syncbuild.build_synced`'s signature; by default that one (the gateway's own
    machine runs the cluster)."""

    def __init__(self, builder: Callable[..., dict] | None = None):
        self._builds: dict[tuple[str, str], Build] = {}
        self._builder = builder or syncbuild.build_synced

    def get(self, user: str, key: str) -> Build | None:
        return self._builds.get((user, key))

    def start(self, user: str, key: str, arguments: tuple) -> Build:
        """The running build of (user, key), or a new one (also after a failed one)."""
        current = self._builds.get((user, key))
        if current is not None and current.log.state == "building":
            return current
        build = Build(BuildLog(asyncio.get_running_loop()))
        build.task = asyncio.create_task(self._run(self._builder, build, user, key, arguments))
        self._builds.pop((user, key), None)
        self._builds[(user, key)] = build  # the newest last
        self._forget_old()
        return build

    def _forget_old(self) -> None:
        finished = [name for name, build in self._builds.items() if build.log.state != "building"]
        for name in finished[: max(0, len(finished) - MAX_FINISHED)]:
            del self._builds[name]

    @staticmethod
    async def _run(builder: Callable[..., dict], build: Build, user: str, key: str, arguments: tuple) -> None:
        try:
            report = await asyncio.to_thread(builder, user, key, *arguments, progress=build.log)
        except syncbuild.SyncBuildError as exc:
            log.warning("the synced environment %s of %s could not be built: %s", key, user, exc)
            build.log.finish(error=str(exc), interrupted=exc.interrupted)
        except Exception as exc:  # the SDK gets a message, the gateway's log the traceback
            log.exception("building the synced environment %s of %s failed", key, user)
            build.log.finish(error=f"the gateway failed while building: {exc}")
        else:
            log.info("built the synced environment %s of %s", key, user)
            build.log.finish(report=report)


def add_sync_routes(routes: web.RouteTableDef, prefix: str, read_json,
                    builder: Callable[..., dict] | None = None) -> None:
    builds = SyncBuilds(builder)

    @routes.get(prefix + "/environments/sync/{key}")
    @api_handler(user_authenticated=True)
    async def synced(request: web.Request) -> web.Response:
        found = await asyncio.to_thread(syncbuild.report, request["user"].name, _key(request))
        if found is None:
            raise web.HTTPNotFound(reason="this environment is not built yet")
        return web.json_response(found)

    @routes.post(prefix + "/environments/sync")
    @api_handler(user_authenticated=True)
    async def sync(request: web.Request) -> web.Response:
        user = request["user"].name
        body = await read_json(request)
        try:
            key = str(body["key"])
            runtime.sync_dir(user, key)
            wheels = {name: base64.b64decode(data, validate=True) for name, data in body.get("wheels", {}).items()}
            arguments = (str(body["python"]), list(body["requirements"]), wheels, list(body.get("critical", [])))
        except (KeyError, TypeError, ValueError, binascii.Error, AttributeError) as exc:
            raise web.HTTPUnprocessableEntity(reason=f"malformed sync request: {exc}") from None
        background = body.get("background") is True
        found = await asyncio.to_thread(syncbuild.report, user, key)
        if found is not None:
            return web.json_response({"state": "built", "report": found} if background else found)
        build = builds.start(user, key, arguments)
        if background:
            return web.json_response({"state": build.log.state}, status=202)
        await asyncio.shield(build.task)  # a client that hangs up does not cancel the build
        if build.log.state == "failed":
            raise web.HTTPUnprocessableEntity(reason=" / ".join((build.log.error or "").splitlines()))
        return web.json_response(build.log.report)

    @routes.get(prefix + "/environments/sync/{key}/log")
    @api_handler(user_authenticated=True)
    async def build_log(request: web.Request) -> web.Response:
        user, key = request["user"].name, _key(request)
        try:
            offset = max(0, int(request.query.get("offset", "0")))
            wait = min(MAX_WAIT, max(0.0, float(request.query.get("wait", "0"))))
        except ValueError:
            raise web.HTTPUnprocessableEntity(reason="offset and wait must be numbers") from None
        build = builds.get(user, key)
        if build is None:  # built before this gateway started, or never
            found = await asyncio.to_thread(syncbuild.report, user, key)
            if found is None:
                raise web.HTTPNotFound(reason="no build of this environment")
            return web.json_response({"entries": [], "next": 0, "state": "built", "report": found})
        await build.log.wait_past(offset, wait)
        return web.json_response(build.log.page(offset))


def _key(request: web.Request) -> str:
    key = request.match_info["key"]
    try:
        runtime.sync_dir(request["user"].name, key)
    except ValueError as exc:
        raise web.HTTPUnprocessableEntity(reason=str(exc)) from None
    return key

"""Dask dashboards through the hub, for their owner only.

Upstream dask-gateway routes `<prefix>/clusters/<name>/` straight to the dashboard, to
anyone who knows the name. Here the gateway's proxy does not get that route (see
`GraticuleBackend._check_cluster_proxied`), so the path falls through to the gateway's
own web application, where this module checks who asks and forwards (HTTP and
websockets) to the cluster's dashboard:

- a hub API token (`Authorization: token|jupyterhub|Bearer TOKEN`) with access to the
  gateway service, as for the gateway's API;
- or a browser session: without one, the browser is sent through the hub's OAuth
  (JupyterHub's login page if it has no hub session either), comes back to
  `<prefix>/oauth_callback`, and gets a session cookie valid under the gateway's path.

The owner gets the page; anyone else gets 403, whatever the cluster's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

SESSION_COOKIE = "graticule-dashboard"
STATE_COOKIE = "graticule-dashboard-state"
SESSION_SECONDS = 8 * 3600
STATE_SECONDS = 600
# Hop-by-hop headers (RFC 9110 7.6.1) and credentials meant for the gateway, not the dashboard.
_DROPPED = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "authorization", "cookie", "content-length",
}


class DashboardAccess:
    """Who may see which dashboard, and the forwarding itself."""

    def __init__(self, backend, *, hub_api_url: str, service_token: str, service_name: str, prefix: str):
        self.backend = backend
        self.hub_api_url = hub_api_url.rstrip("/")
        self.service_token = service_token
        self.client_id = f"service-{service_name}"
        self.access_scope = f"access:services!service={service_name}"
        self.prefix = prefix.rstrip("/")
        self.redirect_uri = f"{self.prefix}/oauth_callback"  # as registered with the hub
        self.sessions: dict[str, tuple[str, float]] = {}  # cookie -> (user, expiry)
        self.states: dict[str, tuple[str, float]] = {}  # OAuth state -> (next URL, expiry)
        self.session: aiohttp.ClientSession | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/oauth_callback", self.oauth_callback)
        app.router.add_route("*", "/clusters/{name}/{tail:.*}", self.dashboard)
        app.on_cleanup.append(self._close)

    def _client(self) -> aiohttp.ClientSession:
        if self.session is None:
            # Bodies pass through as they come (no re-encoding); redirects go to the browser.
            # No cap on connections (aiohttp's default is 100): each open dashboard holds one
            # websocket for as long as its tab is open, and the 101st page, websocket or hub
            # token check would wait behind them without end. The hub's proxy bounds the rest.
            self.session = aiohttp.ClientSession(auto_decompress=False, connector=aiohttp.TCPConnector(limit=0))
        return self.session

    async def _close(self, app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    # -- who asks -----------------------------------------------------------------------------

    async def _user_of_token(self, token: str) -> str | None:
        headers = {"Authorization": f"token {token}"}
        async with self._client().get(f"{self.hub_api_url}/user", headers=headers) as answer:
            if answer.status != 200:
                return None
            model = await answer.json()
        scopes = set(model.get("scopes", []))
        if model.get("kind") != "user" or not {"access:services", self.access_scope} & scopes:
            return None
        return model["name"]

    async def _user(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if token and scheme.lower() in ("token", "jupyterhub", "bearer"):
            return await self._user_of_token(token.strip())
        cookie = request.cookies.get(SESSION_COOKIE)
        held = self.sessions.get(cookie or "")
        if held and held[1] > time.time():
            return held[0]
        self.sessions.pop(cookie or "", None)
        return None

    # -- the dashboard ------------------------------------------------------------------------

    async def dashboard(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        has_credentials = "Authorization" in request.headers
        user = await self._user(request)
        if user is None:
            if has_credentials:
                raise web.HTTPForbidden(reason="this token may not use the gateway")
            return self._login(request)
        cluster = self.backend.db.get_cluster(name)
        if cluster is None or cluster.username != user:
            raise web.HTTPForbidden(reason=f"cluster {name} is not one of {user}'s clusters")
        if not cluster.dashboard_address:
            raise web.HTTPNotFound(reason=f"cluster {name} has no dashboard running")
        target = f"{cluster.dashboard_address}/{request.match_info['tail']}"
        if request.query_string:
            target += "?" + request.query_string
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, target)
        return await self._http(request, target, f"{self.prefix}/clusters/{name}")

    async def _http(self, request: web.Request, target: str, mount: str) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED}
        body = await request.read() if request.body_exists else None
        async with self._client().request(
            request.method, target, headers=headers, data=body, allow_redirects=False
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() in _DROPPED or key.lower() == "set-cookie":
                    continue
                if key.lower() == "location" and value.startswith("/"):
                    value = mount + value  # keep the browser under the cluster's path
                response.headers.add(key, value)
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(64 * 1024):
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _websocket(self, request: web.Request, target: str) -> web.WebSocketResponse:
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        origin = request.headers.get("Origin")
        async with self._client().ws_connect(
            "ws" + target[len("http"):], protocols=offered, origin=origin, autoping=False
        ) as upstream:
            # No compression offered: the hub's proxy (a websocket client itself) forwards
            # the browser's extension headers but would refuse an extension in the answer.
            browser = web.WebSocketResponse(
                protocols=[upstream.protocol] if upstream.protocol else (), autoping=False, compress=False
            )
            await browser.prepare(request)
            await asyncio.gather(_pump(browser, upstream), _pump(upstream, browser))
            return browser

    # -- logging a browser in through the hub ------------------------------------------------------

    def _login(self, request: web.Request) -> web.Response:
        now = time.time()
        self.states = {key: held for key, held in self.states.items() if held[1] > now}
        state = secrets.token_urlsafe(24)
        self.states[state] = (self.prefix + request.rel_url.path_qs, now + STATE_SECONDS)
        query = urlencode({
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "state": state,
        })
        response = _redirect(f"/hub/api/oauth2/authorize?{query}")
        self._cookie(request, response, STATE_COOKIE, state, STATE_SECONDS)
        return response

    async def oauth_callback(self, request: web.Request) -> web.Response:
        state, code = request.query.get("state", ""), request.query.get("code", "")
        held = self.states.pop(state, None)
        if not code or held is None or held[1] < time.time() or request.cookies.get(STATE_COOKIE) != state:
            raise web.HTTPForbidden(reason="OAuth state mismatch: open the dashboard link again")
        form = {
            "client_id": self.client_id,
            "client_secret": self.service_token,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
        }
        async with self._client().post(f"{self.hub_api_url}/oauth2/token", data=form) as answer:
            if answer.status != 200:
                raise web.HTTPForbidden(reason=f"the hub refused the login (HTTP {answer.status})")
            token = (await answer.json())["access_token"]
        user = await self._user_of_token(token)
        if user is None:
            raise web.HTTPForbidden(reason="the hub's answer names no user with access to the gateway")
        now = time.time()
        self.sessions = {key: held for key, held in self.sessions.items() if held[1] > now}
        session = secrets.token_urlsafe(32)
        self.sessions[session] = (user, now + SESSION_SECONDS)
        response = _redirect(held[0])
        self._cookie(request, response, SESSION_COOKIE, session, SESSION_SECONDS)
        response.del_cookie(STATE_COOKIE, path=self.prefix + "/")
        return response

    def _cookie(self, request: web.Request, response: web.StreamResponse, name: str, value: str, age: int) -> None:
        secure = request.headers.get("X-Forwarded-Proto", request.scheme) == "https"
        response.set_cookie(
            name, value, path=self.prefix + "/", max_age=age, httponly=True, samesite="Lax", secure=secure
        )


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


async def _pump(source, sink) -> None:
    """Copy websocket messages from `source` to `sink` until either side closes."""
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        async for message in source:
            if message.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type == aiohttp.WSMsgType.PING:
                await sink.ping(message.data)
            elif message.type == aiohttp.WSMsgType.PONG:
                await sink.pong(message.data)
            else:
                break
    await sink.close()

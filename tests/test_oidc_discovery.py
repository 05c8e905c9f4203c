"""The OIDC authenticator fetches the issuer's discovery document without blocking the hub's loop.

A real tornado server on 127.0.0.1, on the same event loop as the authenticator, answers
only after another coroutine on that loop has run: a blocking fetch (as urllib did) would
stall the loop, the server could never answer, and discovery would fail on its timeout.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from deploy.hub.oauth import DiscoveringLoginHandler, PlatformOIDCAuthenticator


def _document(base: str) -> dict:
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/auth",
        "token_endpoint": f"{base}/token",
        "userinfo_endpoint": f"{base}/userinfo",
    }


async def _serve_discovery(released: asyncio.Event) -> tuple[HTTPServer, str, list[str]]:
    requests: list[str] = []

    class Discovery(RequestHandler):
        async def get(self) -> None:
            requests.append(self.request.path)
            await released.wait()  # answers only once the loop has run someone else
            self.write(json.dumps(_document(base)))

    sockets = bind_sockets(0, "127.0.0.1")
    base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/realms/ocean"
    server = HTTPServer(Application([(r"/realms/ocean/.well-known/openid-configuration", Discovery)]))
    server.add_sockets(sockets)
    return server, base, requests


def test_discovery_runs_on_the_loop_without_blocking_it():
    async def scenario() -> tuple[PlatformOIDCAuthenticator, str, list[str]]:
        released = asyncio.Event()
        server, base, requests = await _serve_discovery(released)
        try:
            authenticator = PlatformOIDCAuthenticator(issuer=base)
            discovery = asyncio.create_task(authenticator.discover())
            await asyncio.sleep(0)  # the loop is free while discovery waits: release the server
            released.set()
            await asyncio.wait_for(discovery, timeout=30)
            await authenticator.discover()  # kept: no second request
            return authenticator, base, requests
        finally:
            server.stop()

    authenticator, base, requests = asyncio.run(scenario())
    assert authenticator.authorize_url == f"{base}/auth"
    assert authenticator.token_url == f"{base}/token"
    assert authenticator.userdata_url == f"{base}/userinfo"
    assert requests == ["/realms/ocean/.well-known/openid-configuration"]


def test_explicit_endpoints_are_kept_and_nothing_is_fetched():
    authenticator = PlatformOIDCAuthenticator(
        issuer="http://127.0.0.1:9/unused", authorize_url="https://a/auth", token_url="https://a/token",
        userdata_url="https://a/userinfo",
    )
    asyncio.run(authenticator.discover())  # port 9 would refuse: success means no fetch was made
    assert authenticator.authorize_url == "https://a/auth"


def test_the_login_redirect_waits_for_discovery():
    assert PlatformOIDCAuthenticator.login_handler is DiscoveringLoginHandler
    assert asyncio.iscoroutinefunction(DiscoveringLoginHandler.get)


@pytest.mark.parametrize("trait", ["authorize_url", "token_url", "userdata_url"])
def test_no_endpoint_is_fetched_at_construction(trait):
    # A trait default that fetched would block whoever first read it (the hub's loop).
    assert getattr(PlatformOIDCAuthenticator(issuer="http://127.0.0.1:9/unused"), trait) == ""

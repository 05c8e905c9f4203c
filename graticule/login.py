"""`graticule.login(URL)`: get an API token from the hub and keep it in the config dir.

The token is created by the hub itself through JupyterHub's token API
(`POST /hub/api/users/NAME/tokens` authenticated with the user's hub username and
password, as the hub's own authenticator checks them); it never appears in code.
Where the gateway and the Dask scheduler proxy are comes from the platform itself: the
public discovery document behind the hub (`<hub>/services/platform/discovery.json`).
"""

from __future__ import annotations

import getpass
import socket
import urllib.parse
from pathlib import Path

from graticule import http, settings
from graticule.errors import AuthError, GraticuleError

TOKEN_LIFETIME_S = 30 * 24 * 3600


def login(url: str, *, username: str | None = None, password: str | None = None,
          gateway: str | None = None, proxy: str | None = None) -> Path:
    """Log in to the hub at `url`; returns the credentials file written.

    Prompts for the username and password when not given. `gateway`/`proxy` default to
    what the platform's discovery document says (else `<url>/services/dask-gateway`)."""
    hub = settings.hub_root(url)
    username = username or input(f"Username on {hub}: ").strip()
    if password is None:
        password = getpass.getpass(f"Password for {username}: ")
    quoted = urllib.parse.quote(username, safe="")
    body = {
        "auth": {"username": username, "password": password},
        "note": f"graticule SDK on {socket.gethostname()}",
        "expires_in": TOKEN_LIFETIME_S,
    }
    try:
        answer = http.call("POST", f"{hub}/hub/api/users/{quoted}/tokens", token="", body=body)
    except GraticuleError as exc:
        raise AuthError(f"the hub at {hub} refused the login for {username!r}: {exc}") from None
    token = answer.get("token")
    if not token:
        raise AuthError(f"the hub at {hub} returned no token")
    who = http.call("GET", f"{hub}/hub/api/user", token=token, scheme="token")
    found = discover(hub)
    return settings.save(
        settings.Settings(
            token=token,
            gateway_url=(gateway or hub + found.get("path", settings.SERVICE_PATH)).rstrip("/"),
            proxy_address=proxy or found.get("scheduler_proxy"),
            hub_url=hub,
            user=who.get("name", username),
        )
    )


def discover(hub: str) -> dict:
    """The gateway's path and scheduler proxy address, from the platform's discovery
    document; {} when the hub serves none (then the defaults apply)."""
    try:
        document = http.call("GET", hub + settings.DISCOVERY_PATH, token="", timeout=30)
    except (GraticuleError, ValueError):
        return {}
    gateway = document.get("gateway") if isinstance(document, dict) else None
    return {key: value for key, value in (gateway or {}).items() if isinstance(value, str) and value}


def logout() -> None:
    """Forget the saved credentials (the token stays valid until it expires)."""
    settings.config_path().unlink(missing_ok=True)

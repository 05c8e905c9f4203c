"""`graticule.login(URL)`: get an API token from the hub and keep it in the config dir.

The token is created by the hub itself through JupyterHub's token API
(`POST /hub/api/users/NAME/tokens` authenticated with the user's hub username and
password, as the hub's own authenticator checks them); it never appears in code.
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
    the gateway behind the hub (`<url>/services/dask-gateway`)."""
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
    return settings.save(
        settings.Settings(
            token=token,
            gateway_url=(gateway or hub + settings.SERVICE_PATH).rstrip("/"),
            proxy_address=proxy,
            hub_url=hub,
            user=who.get("name", username),
        )
    )


def logout() -> None:
    """Forget the saved credentials (the token stays valid until it expires)."""
    settings.config_path().unlink(missing_ok=True)

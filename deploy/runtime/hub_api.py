"""The one client of JupyterHub's REST API that the platform's own code uses.

With the supervisor's service token (`admin_api_token`: list:users, delete:servers,
delete:users, tokens) it issues users' API tokens (`platform token NAME`) and makes the
hub's user database agree with platform.yaml after a change: JupyterHub's
`allowed_users` only gates new logins, so a user removed from platform.yaml would keep
their database entry, API tokens and running server until `prune_users` removes them.
Also `http_ok`, the health probe every component answers.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping

from deploy.errors import RuntimeFailure


class HubAPIError(RuntimeFailure):
    """The hub answered with an error status (`status`), or not at all."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HubAPI:
    def __init__(self, api_url: str, token: str, timeout: float = 30) -> None:
        self.api_url, self.token, self.timeout = api_url, token, timeout

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        """(HTTP status, parsed JSON body or None); an error status is returned, not raised."""
        request = urllib.request.Request(
            self.api_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
                return response.status, json.loads(payload) if payload else None
        except urllib.error.HTTPError as exc:
            return exc.code, None

    def new_token(self, username: str, note: str) -> str:
        status, answer = self.call("POST", f"/users/{username}/tokens", {"note": note})
        if status >= 300 or not isinstance(answer, dict):
            raise HubAPIError(f"the hub refused a token for {username!r}: HTTP {status}", status)
        return answer["token"]

    def prune_users(self, allowed: Iterable[str], timeout: float = 60) -> list[str]:
        """Delete every hub user not in `allowed`, stopping their servers first; returns the names."""
        keep = set(allowed)
        status, users = self.call("GET", "/users")
        if status != 200 or not isinstance(users, list):
            raise HubAPIError(f"cannot list the hub's users (HTTP {status})", status)
        removed = []
        for user in users:
            name = user["name"]
            if name in keep:
                continue
            for server in user.get("servers") or {}:
                self.call("DELETE", f"/users/{name}/servers/{server}" if server else f"/users/{name}/server")
            deadline = time.monotonic() + timeout
            while True:
                status, _ = self.call("DELETE", f"/users/{name}")
                if status in (204, 404) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)  # 400 while a server is still stopping
            if status not in (204, 404):
                raise HubAPIError(f"cannot remove {name!r} from the hub (HTTP {status})", status)
            removed.append(name)
        return removed


def http_ok(url: str, headers: Mapping[str, str] | None = None, timeout: float = 3) -> dict | None:
    """The JSON body of a 2xx answer from `url`, {} if not JSON, None if no 2xx answer."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except (OSError, urllib.error.HTTPError):
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {"value": parsed}

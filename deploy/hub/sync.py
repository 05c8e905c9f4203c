"""Make the hub's user database agree with platform.yaml after a change.

JupyterHub's `allowed_users` only gates new logins: a user removed from platform.yaml
keeps their database entry, API tokens and running server. `prune_users` stops the
servers of users no longer listed and deletes them (tokens included), through the hub's
REST API with a service token holding list:users, delete:servers and delete:users.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable


def _call(api_url: str, token: str, method: str, path: str) -> tuple[int, object]:
    request = urllib.request.Request(api_url + path, method=method, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = response.read()
            return response.status, json.loads(payload) if payload else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


def prune_users(api_url: str, token: str, allowed: Iterable[str], timeout: float = 60) -> list[str]:
    """Delete every hub user not in `allowed`, stopping their servers first; returns the names."""
    keep = set(allowed)
    status, users = _call(api_url, token, "GET", "/users")
    if status != 200 or not isinstance(users, list):
        raise RuntimeError(f"cannot list the hub's users (HTTP {status})")
    removed = []
    for user in users:
        name = user["name"]
        if name in keep:
            continue
        for server in user.get("servers") or {}:
            _call(api_url, token, "DELETE", f"/users/{name}/servers/{server}" if server else f"/users/{name}/server")
        deadline = time.monotonic() + timeout
        while True:
            status, _ = _call(api_url, token, "DELETE", f"/users/{name}")
            if status in (204, 404) or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # 400 while a server is still stopping
        if status not in (204, 404):
            raise RuntimeError(f"cannot remove {name!r} from the hub (HTTP {status})")
        removed.append(name)
    return removed

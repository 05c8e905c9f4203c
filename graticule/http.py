"""Small JSON-over-HTTP calls (stdlib only: no session to leak) to the hub and gateway."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from graticule.errors import GraticuleError, for_status

TIMEOUT = 600.0  # building a synced environment can take minutes on a cold cache


def call(method: str, url: str, *, token: str, scheme: str = "jupyterhub",
         body: object | None = None, timeout: float = TIMEOUT) -> dict:
    """`body` as JSON in, the JSON answer out; HTTP errors become SDK exceptions."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"{scheme} {token}")
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
    except urllib.error.HTTPError as exc:
        raise for_status(exc.code, _message(exc), url) from None
    except OSError as exc:
        raise GraticuleError(f"cannot reach {url}: {exc}") from None
    return json.loads(text) if text else {}


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(exc.read() or b"{}")
    except ValueError:
        return exc.reason or ""
    if isinstance(payload, dict):
        return str(payload.get("error") or payload.get("message") or exc.reason or "")
    return str(exc.reason or "")

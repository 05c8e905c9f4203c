"""Small JSON-over-HTTP calls (stdlib only: no session to leak) to the hub and gateway."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from graticule.errors import GraticuleError, for_status
from graticule.gateway_wait import GatewayWait, waited_out

TIMEOUT = 600.0  # building a synced environment can take minutes on a cold cache


def call(method: str, url: str, *, token: str, scheme: str = "jupyterhub",
         body: object | None = None, timeout: float = TIMEOUT, wait: GatewayWait | None = None) -> dict:
    """`body` as JSON in, the JSON answer out; HTTP errors become SDK exceptions.

    wait: try again while the answer is a restarting gateway's (graticule.gateway_wait)."""
    while True:
        try:
            answer = _call_once(method, url, token=token, scheme=scheme, body=body, timeout=timeout)
        except _Refused as refused:
            if wait is None or not waited_out(refused.status, refused.json_error):
                raise refused.error from None
            status = refused.status
        else:
            if wait is not None:
                wait.answered()
            return answer
        time.sleep(wait.pause(status))  # outside the except: GatewayUnavailable chains nothing


class _Refused(Exception):
    def __init__(self, status: int, error: GraticuleError, json_error: bool) -> None:
        self.status, self.error, self.json_error = status, error, json_error


def _call_once(method: str, url: str, *, token: str, scheme: str, body: object | None, timeout: float) -> dict:
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
        message, json_error = _message(exc)
        raise _Refused(exc.code, for_status(exc.code, message, url), json_error) from None
    except OSError as exc:
        raise GraticuleError(f"cannot reach {url}: {exc}") from None
    return json.loads(text) if text else {}


def _message(exc: urllib.error.HTTPError) -> tuple[str, bool]:
    """The refusal's message, and whether it came as JSON (the API's, not a proxy's page)."""
    try:
        payload = json.loads(exc.read() or b"{}")
    except ValueError:
        return exc.reason or "", False
    if isinstance(payload, dict):
        return str(payload.get("error") or payload.get("message") or exc.reason or ""), True
    return str(exc.reason or ""), False

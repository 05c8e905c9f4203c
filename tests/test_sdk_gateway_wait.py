"""The SDK's wait for a restarting gateway (graticule/gateway_wait.py) in its stdlib calls
(graticule/http.py, package sync's): a loopback HTTP server answers as a restarting
gateway's front does (503 pages, then a bare 404 while its proxy has no API route), then
as its API does. The cluster start through dask-gateway's client is tested end to end on a
real platform in tests/test_sdk_gateway_restart_e2e.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from graticule import http
from graticule.errors import ClusterNotFound, GatewayUnavailable, GraticuleError
from graticule.gateway_wait import GatewayWait

PAGE_503 = (503, "text/html", b"<html><body>Service Unavailable</body></html>")
BARE_404 = (404, "text/plain", b"Not Found\n")
API_404 = (404, "application/json", b'{"error": "this environment is not built yet"}')
OK = (200, "application/json", b'{"state": "built"}')


@contextmanager
def _front(answers: list[tuple[int, str, bytes]]) -> Iterator[tuple[str, list[str]]]:
    """Answers in turn (the last one for ever); the paths asked, in order."""
    asked: list[str] = []

    class Front(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            asked.append(f"{self.command} {self.path}")
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, kind, body = answers[min(len(asked), len(answers)) - 1]
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Front)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_call_goes_through_once_the_gateway_is_back_after_one_line():
    said: list[str] = []
    with _front([PAGE_503, PAGE_503, BARE_404, OK]) as (url, asked):
        wait = GatewayWait(url, bound=60, say=said.append)
        answer = http.call("POST", f"{url}/sync", token="t", body={"key": "k"}, wait=wait)
    assert answer == {"state": "built"} and len(asked) == 4
    assert said == [f"graticule: the gateway at {url} answered HTTP 503 (restarting?); waiting up to 60 s for it"]


def test_an_answer_of_the_api_is_not_waited_out():
    with _front([API_404, OK]) as (url, asked), pytest.raises(ClusterNotFound, match="not built yet"):
        http.call("GET", f"{url}/sync/k", token="t", wait=GatewayWait(url, say=lambda line: None))
    assert len(asked) == 1


def test_a_gateway_that_stays_away_is_a_clear_error_after_the_bound_and_each_outage_is_said_once():
    said: list[str] = []
    with _front([PAGE_503]) as (url, asked):
        wait = GatewayWait(url, bound=1, say=said.append)
        with pytest.raises(GatewayUnavailable) as raised:
            http.call("GET", f"{url}/sync/k", token="t", wait=wait)
    assert str(raised.value).startswith(f"the gateway at {url} still answered HTTP 503 after 1 s")
    assert raised.value.__cause__ is None and raised.value.__context__ is None  # one plain line, no chain
    assert len(asked) >= 2 and len(said) == 1


def test_without_a_wait_a_503_is_an_error_at_once():
    with _front([PAGE_503, OK]) as (url, asked), pytest.raises(GraticuleError, match="Service Unavailable"):
        http.call("GET", f"{url}/x", token="t")
    assert len(asked) == 1


def test_a_negative_wait_is_refused():
    with pytest.raises(ValueError, match="gateway_wait"):
        GatewayWait("http://gw", bound=-1)


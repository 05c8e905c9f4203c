"""The front door's pieces without a platform: the rendered hub and gateway configuration
(loaded by JupyterHub's and dask-gateway's own loaders) and the discovery service (a real
HTTP server on a loopback port). End to end: tests/test_laptop_e2e.py."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from jupyterhub.app import JupyterHub
from traitlets.config.loader import PyFileConfigLoader

from deploy.hub import discovery
from render.gateway_config import render_gateway
from render.hub_config import render_hub
from render.validate import validate_text
from tests.support.procs import free_port

RUNTIME = {
    "GRATICULE_HUB_URL": "http://127.0.0.1:18123",
    "GRATICULE_HUB_API_URL": "http://127.0.0.1:18123/hub/api",
    "GRATICULE_HUB_BIND_URL": "http://127.0.0.1:18124",
    "GRATICULE_PROXY_API_URL": "http://127.0.0.1:18125",
    "GRATICULE_GATEWAY_SERVICE_URL": "http://127.0.0.1:18126",
    "GRATICULE_GATEWAY_SCHEDULER_URL": "tls://127.0.0.1:18127",
    "GRATICULE_DISCOVERY_URL": "http://127.0.0.1:18128",
    "GRATICULE_GATEWAY_API_TOKEN": "gateway-token-from-env",
    "GRATICULE_ADMIN_API_TOKEN": "admin-token-from-env",
}


@pytest.fixture
def runtime(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(tmp_path / "state"))
    for key, value in RUNTIME.items():
        monkeypatch.setenv(key, value)
    return tmp_path


def _write(files: dict[str, bytes], build: Path) -> None:
    for relative, data in files.items():
        (build / relative).parent.mkdir(parents=True, exist_ok=True)
        (build / relative).write_bytes(data)


def test_hub_routes_the_gateway_and_serves_discovery(example_text, runtime):
    _write(render_hub(validate_text(example_text), "local"), runtime / "build")
    app = JupyterHub()
    app.load_config_file(str(runtime / "build" / "hub" / "jupyterhub_config.py"))
    services = {service["name"]: service for service in app.config.JupyterHub.services}
    gateway = services["dask-gateway"]
    assert gateway["url"] == RUNTIME["GRATICULE_GATEWAY_SERVICE_URL"]  # so the proxy routes it
    assert gateway["oauth_redirect_uri"] == "/services/dask-gateway/oauth_callback"
    assert gateway["oauth_no_confirm"] is True
    found = services["platform"]
    assert found["url"] == RUNTIME["GRATICULE_DISCOVERY_URL"]
    assert found["command"][1:] == ["-m", "deploy.hub.discovery"]
    assert "api_token" not in found  # JupyterHub makes it one with no scopes
    document = json.loads(found["environment"]["GRATICULE_DISCOVERY"])
    assert document == {
        "platform": "oceanlab",
        "gateway_path": "/services/dask-gateway",
        "scheduler_proxy": RUNTIME["GRATICULE_GATEWAY_SCHEDULER_URL"],
    }
    for secret in ("gateway-token-from-env", "admin-token-from-env"):
        assert secret not in json.dumps(found)


def test_gateway_serves_under_the_hub_service_path(example_text, runtime, monkeypatch):
    monkeypatch.setenv("GRATICULE_GATEWAY_URL", RUNTIME["GRATICULE_GATEWAY_SERVICE_URL"])
    _write(render_gateway(validate_text(example_text), "local"), runtime / "build")
    path = runtime / "build" / "gateway" / "dask_gateway_config.py"
    config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    assert config.Proxy.prefix == "/services/dask-gateway"
    assert config.Proxy.address == "127.0.0.1:18126"  # reached by the hub's proxy only
    assert config.Proxy.tcp_address == "127.0.0.1:18127"  # the published scheduler proxy
    assert config.GraticuleBackend.hub_api_url == RUNTIME["GRATICULE_HUB_API_URL"]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_discovery_service_serves_one_public_document():
    port = free_port()
    environ = {
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/platform/",
        "GRATICULE_DISCOVERY": json.dumps(
            {"platform": "oceanlab", "gateway_path": "/services/dask-gateway", "scheduler_proxy": "tls://h:443"}
        ),
    }
    httpd = discovery.server(environ)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        status, body = _get(f"http://127.0.0.1:{port}/services/platform/discovery.json")
        assert status == 200
        assert json.loads(body) == {
            "apiVersion": 1,
            "platform": "oceanlab",
            "gateway": {"path": "/services/dask-gateway", "scheduler_proxy": "tls://h:443"},
        }
        assert _get(f"http://127.0.0.1:{port}/services/platform/other")[0] == 404
        assert _get(f"http://127.0.0.1:{port}/discovery.json")[0] == 404
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)

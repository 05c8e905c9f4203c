"""The hub's and the gateway's rendered configuration, loaded as JupyterHub and dask-gateway
load it, and the runtime environment each reads (what the configuration tests share)."""

from __future__ import annotations

from pathlib import Path

from jupyterhub.app import JupyterHub
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from render.gateway_config import render_gateway
from render.hub_config import render_hub
from render.validate import validate_text

HUB_RUNTIME_ENV = {
    "GRATICULE_HUB_URL": "http://127.0.0.1:18123",
    "GRATICULE_HUB_BIND_URL": "http://127.0.0.1:18124",
    "GRATICULE_PROXY_API_URL": "http://127.0.0.1:18125",
    "GRATICULE_GATEWAY_API_TOKEN": "gateway-token-from-env",
    "GRATICULE_ADMIN_API_TOKEN": "admin-token-from-env",
    "GRATICULE_OAUTH_CLIENT_SECRET": "client-secret-from-env",
}


def load_hub_config(platform_text: str, target: str, build: Path) -> Config:
    """Render build/hub/ and load jupyterhub_config.py with JupyterHub's own loader."""
    files = render_hub(validate_text(platform_text), target)
    for relative, data in files.items():
        (build / relative).parent.mkdir(parents=True, exist_ok=True)
        (build / relative).write_bytes(data)
    app = JupyterHub()
    app.load_config_file(str(build / "hub" / "jupyterhub_config.py"))
    return app.config


GATEWAY_RUNTIME_ENV = {
    "GRATICULE_HUB_URL": "http://127.0.0.1:18000",
    "GRATICULE_HUB_API_URL": "http://127.0.0.1:18000/hub/api",
    "GRATICULE_GATEWAY_URL": "http://127.0.0.1:18001",
    "GRATICULE_GATEWAY_API_TOKEN": "not-a-real-token",
}


def render_gateway_config(platform, target: str, directory: Path) -> Path:
    for path, data in render_gateway(platform, target).items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(data)
    return directory / "gateway" / "dask_gateway_config.py"


def load_gateway_config(config_path: Path):
    """The loader `DaskGateway.load_config_file` uses, without applying the config to an
    app (that would import the cloud backend classes, which a later issue implements)."""
    return PyFileConfigLoader(config_path.name, path=str(config_path.parent)).load_config()

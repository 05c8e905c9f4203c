"""Where a platform's components listen, and the environment each one starts with.

Ports are chosen on the first `up` and kept in `<state>/run/runtime.json` after, so that
URLs and tokens stay valid across restarts. Target-neutral: the local supervisor and a
hub VM use the same record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.errors import RuntimeFailure
from deploy.ports import free_port
from deploy.ports import is_free as port_free
from deploy.runtime import env
from deploy.runtime.state import Layout, secret, write_private
from render.hub_config import GATEWAY_PATH

DEFAULT_HUB_PORT = 8000
PORT_NAMES = ("public", "proxy_api", "hub", "gateway", "gateway_web", "discovery", "pages")


@dataclass(frozen=True)
class Runtime:
    layout: Layout
    ports: Mapping[str, int]
    # Where the two published ports (the proxy's public port, the gateway's scheduler TLS
    # proxy) bind: loopback on a laptop; every interface on a hub VM behind a load balancer.
    public_host: str = "127.0.0.1"

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['public']}"

    @property
    def hub_api_url(self) -> str:
        return f"{self.hub_url}/hub/api"

    @property
    def hub_bind_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['hub']}"

    @property
    def proxy_api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy_api']}"

    @property
    def gateway_url(self) -> str:
        """The gateway's API and dashboards, behind the hub's proxy: the front door."""
        return self.hub_url + GATEWAY_PATH

    @property
    def gateway_service_url(self) -> str:
        """Where the hub's proxy reaches the gateway's HTTP (not published)."""
        return f"http://127.0.0.1:{self.ports['gateway_web']}"

    @property
    def gateway_scheduler_url(self) -> str:
        """The gateway's TLS proxy to Dask schedulers (SNI-routed): the one other published port."""
        return f"tls://{self.public_host}:{self.ports['gateway']}"

    @property
    def discovery_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['discovery']}"

    @property
    def pages_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['pages']}"

    def secret(self, name: str) -> str:
        return secret(self.layout.secrets / name)

    def values(self) -> dict[str, str]:
        """This platform's runtime values, by the names of deploy.runtime.env."""
        return {
            env.STATE_DIR: str(self.layout.root),
            env.HUB_URL: self.hub_url,
            env.HUB_API_URL: self.hub_api_url,
            env.HUB_BIND_URL: self.hub_bind_url,
            env.PROXY_API_URL: self.proxy_api_url,
            env.GATEWAY_URL: self.gateway_url,
            env.GATEWAY_SCHEDULER_URL: self.gateway_scheduler_url,
            env.GATEWAY_API_TOKEN: self.secret("gateway_api_token"),
            env.ADMIN_API_TOKEN: self.secret("admin_api_token"),
            env.PROXY_AUTH_TOKEN: self.secret("proxy_auth_token"),
        }

    def environment(self, withheld: Iterable[str] = (), extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a component starts with: with its `extra` values, without the
        `withheld` variables."""
        return env.component_environment({**self.values(), **(extra or {})}, withheld)


def _path(layout: Layout) -> Path:
    return layout.run / "runtime.json"


def load_runtime(state_dir: Path) -> Runtime | None:
    layout = Layout(Path(state_dir).absolute())
    try:
        saved = json.loads(_path(layout).read_text())
    except (OSError, ValueError):
        return None
    return Runtime(layout, saved["ports"])


def choose_ports(layout: Layout, hub_port: int | None, gateway_port: int | None) -> Runtime:
    """The ports of the last `up` (or new free ones), with the ports asked for."""
    previous = load_runtime(layout.root)
    ports = dict(previous.ports) if previous else {}
    if hub_port:
        ports["public"] = hub_port
    if gateway_port:
        ports["gateway"] = gateway_port
    if "public" not in ports:
        ports["public"] = DEFAULT_HUB_PORT if port_free(DEFAULT_HUB_PORT) else free_port()
    for name in PORT_NAMES[1:]:
        if name not in ports:
            ports[name] = free_port()
    if len(set(ports.values())) != len(ports):
        raise RuntimeFailure(f"two components would share a port: {ports}")
    runtime = Runtime(layout, ports)
    write_private(_path(layout), json.dumps({"ports": ports}, indent=2, sort_keys=True) + "\n")
    return runtime

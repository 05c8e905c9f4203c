"""What I may use and what I have: `profiles()`, `usage()`, `clusters()`."""

from __future__ import annotations

from dask_gateway import Gateway, JupyterHubAuth

from graticule import http, settings
from graticule.cluster import close_gateway
from graticule.errors import translated

API = "/api/graticule/v1"


def _get(path: str) -> dict:
    config = settings.resolve()
    return http.call("GET", config.gateway_url + API + path, token=config.token)


def profiles() -> dict:
    """The profiles (cpu, memory, gpu, price per hour) and environments granted to me:
    `{"profiles": {name: {...}}, "environments": [...], "default_profile": name}`."""
    return _get("/me")


def usage() -> dict:
    """My budget this month: `{"budget", "spent_usd", "limit_usd", "cores_in_use", ...}`."""
    return _get("/usage")


def clusters() -> list[dict]:
    """My clusters: name, status, options, dashboard link."""
    config = settings.resolve()
    gateway = Gateway(
        address=config.gateway_url,
        proxy_address=config.proxy_address,
        auth=JupyterHubAuth(api_token=config.token),
    )
    try:
        with translated(config.gateway_url):
            reports = gateway.list_clusters()
    finally:
        close_gateway(gateway)
    return [
        {
            "name": report.name,
            "status": report.status.name.lower(),
            "options": dict(report.options),
            "dashboard_link": report.dashboard_link,
            "start_time": report.start_time.isoformat() if report.start_time else None,
        }
        for report in reports
    ]

"""The platform's long-running components, one `Component` record each.

A record says all there is to know to run, watch and restart a component: its command,
the address it serves, the ports it binds, how to ask whether it is healthy, the
rendered files it reads, the secrets it does without and its package (for its version
and for the fingerprint). Target-neutral: the local supervisor starts them as detached
processes; a hub VM would start the same commands from systemd units.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from deploy.runtime import env
from deploy.runtime.addresses import Runtime
from deploy.runtime.hub_api import http_ok
from deploy.runtime.state import Layout
from render.build import MANIFEST
from render.hub_config import DISCOVERY_SERVICE, GATEWAY_PATH, GATEWAY_SERVICE, PAGES_SERVICE

HUB_CONFIG = "hub/jupyterhub_config.py"
GATEWAY_CONFIG = "gateway/dask_gateway_config.py"


@dataclass(frozen=True)
class Component:
    name: str
    package: str  # its distribution: its version, and an upgrade restarts it
    command: Callable[[Runtime], list[str]]
    address: Callable[[Runtime], str]
    ports: Callable[[Runtime], list[int]]
    probe: Callable[[Runtime], dict | None]  # a health answer, None when unhealthy
    workdir: Callable[[Layout], Path]
    inputs: Callable[[Mapping[str, bytes]], list[str]] = lambda files: []  # rendered files it reads
    withheld: tuple[str, ...] = ()  # secrets of the others that it does not get
    extra_environment: Callable[[Runtime], dict[str, str]] = lambda runtime: {}  # its own values
    reported_version: Callable[[Runtime, dict | None], str | None] = lambda runtime, probe: None
    package_version_fallback: bool = True  # else only what the running component reports

    def environment(self, runtime: Runtime) -> dict[str, str]:
        return runtime.environment(self.withheld, self.extra_environment(runtime))

    def version(self, runtime: Runtime, probe: dict | None) -> str | None:
        """What the running component reports, else its installed package's version."""
        reported = self.reported_version(runtime, probe)
        if reported or not self.package_version_fallback:
            return reported
        try:
            return metadata.version(self.package)
        except metadata.PackageNotFoundError:
            return None

    def fingerprint(self, cmd: list[str], environment: Mapping[str, str], files: Mapping[str, bytes]) -> str:
        """What a running component was started from; `up` restarts it when this changes."""
        digest = hashlib.sha256(json.dumps(cmd).encode())
        for package in ("graticule", self.package):  # an upgrade is a change too
            with contextlib.suppress(metadata.PackageNotFoundError):
                digest.update(f"{package}=={metadata.version(package)}\n".encode())
        for key in sorted(environment):
            if key.startswith(env.FINGERPRINTED_PREFIXES):
                digest.update(f"{key}={environment[key]}\n".encode())
        for path in sorted(self.inputs(files)):
            digest.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
        return digest.hexdigest()


PROXY_TIMEOUT_MS = 300_000  # what the proxy waits for a target's answer


def _proxy_command(runtime: Runtime) -> list[str]:
    # configurable-http-proxy with websocket subprotocols passed through (see the module)
    return [
        sys.executable,
        "-m",
        "deploy.local.http_proxy",
        f"--ip={runtime.public_host}",
        f"--port={runtime.ports['public']}",
        "--api-ip=127.0.0.1",
        f"--api-port={runtime.ports['proxy_api']}",
        f"--default-target={runtime.hub_bind_url}",
        f"--error-target={runtime.hub_bind_url}/hub/error",
        # Without it tornado's 20 s request timeout applies, which dask-gateway's own 20 s
        # long poll for a starting cluster (`GET .../clusters/<name>?wait`) races: a 503.
        f"--proxy-timeout={PROXY_TIMEOUT_MS}",
    ]


def _proxy_probe(runtime: Runtime) -> dict | None:
    token = runtime.secret("proxy_auth_token")
    return http_ok(f"{runtime.proxy_api_url}/api/routes", {"Authorization": f"token {token}"})


def unrouted_services(runtime: Runtime, with_gateway: bool) -> set[str]:
    """The hub's services the proxy does not route yet. The hub answers before it has told
    the proxy about them, and until then `/services/...` reaches the hub itself: a laptop's
    first cluster would get the hub's 403, its discovery document a 404."""
    names = [DISCOVERY_SERVICE, PAGES_SERVICE, *([GATEWAY_SERVICE] if with_gateway else [])]
    routed = {path.rstrip("/") for path in _proxy_probe(runtime) or {}}
    return {name for name in names if f"/services/{name}" not in routed}


def _gateway_version(runtime: Runtime, probe: dict | None) -> str | None:
    answer = http_ok(f"{runtime.gateway_service_url}{GATEWAY_PATH}/api/version")
    return answer.get("version") if answer else None


PROXY = Component(
    name="proxy",
    package="configurable-http-proxy",
    command=_proxy_command,
    address=lambda runtime: runtime.proxy_api_url,
    ports=lambda runtime: [runtime.ports["public"], runtime.ports["proxy_api"]],
    probe=_proxy_probe,
    workdir=lambda layout: layout.run,
    withheld=(env.GATEWAY_API_TOKEN, env.ADMIN_API_TOKEN),
)

HUB = Component(
    name="hub",
    package="jupyterhub",
    command=lambda runtime: [sys.executable, "-m", "jupyterhub", "-f", str(runtime.layout.build / HUB_CONFIG)],
    address=lambda runtime: runtime.hub_url,
    # its services (discovery, usage pages) go with the hub
    ports=lambda runtime: [runtime.ports["hub"], runtime.ports["discovery"], runtime.ports["pages"]],
    # the hub itself, not through the proxy (which has its own probe)
    probe=lambda runtime: http_ok(f"{runtime.hub_bind_url}/hub/api/"),
    workdir=lambda layout: layout.hub,
    extra_environment=lambda runtime: {
        env.GATEWAY_SERVICE_URL: runtime.gateway_service_url,
        env.DISCOVERY_URL: runtime.discovery_url,
        env.PAGES_URL: runtime.pages_url,
    },
    inputs=lambda files: [path for path in files if path.startswith("hub/")],
    reported_version=lambda runtime, probe: (probe or {}).get("version"),
    package_version_fallback=False,
)

GATEWAY = Component(
    name="gateway",
    package="dask-gateway-server",
    command=lambda runtime: [
        sys.executable, "-m", "dask_gateway_server", "-f", str(runtime.layout.build / GATEWAY_CONFIG)
    ],
    address=lambda runtime: runtime.gateway_url,
    ports=lambda runtime: [runtime.ports["gateway"], runtime.ports["gateway_web"]],
    probe=lambda runtime: http_ok(f"{runtime.gateway_service_url}{GATEWAY_PATH}/api/health"),
    workdir=lambda layout: layout.gateway,
    inputs=lambda files: [
        path for path in files if not path.startswith(("hub/", "terraform/", "jobs/")) and path != MANIFEST
    ],
    withheld=(env.ADMIN_API_TOKEN, env.PROXY_AUTH_TOKEN),
    # its own HTTP listens where the hub's proxy reaches it
    extra_environment=lambda runtime: {env.GATEWAY_URL: runtime.gateway_service_url},
    reported_version=_gateway_version,
)

JOBS_HEARTBEAT = "jobs-heartbeat.json"  # written by deploy.jobs.service each pass


def _jobs_probe(runtime: Runtime) -> dict | None:
    """The scheduler's last heartbeat, if the process that wrote it still runs."""
    try:
        beat = json.loads((runtime.layout.run / JOBS_HEARTBEAT).read_text())
    except (OSError, ValueError):
        return None
    record = runtime.layout.run / "jobs.json"  # the supervisor's record of the component
    try:
        pid = json.loads(record.read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None
    return beat if beat.get("pid") == pid else None


JOBS = Component(
    name="jobs",
    package="graticule",
    command=lambda runtime: [sys.executable, "-m", "deploy.jobs.service"],
    address=lambda runtime: "",
    ports=lambda runtime: [],
    probe=_jobs_probe,
    workdir=lambda layout: layout.run,
    # its jobs, and what it knows of budgets and profiles
    inputs=lambda files: [path for path in files if path.startswith("jobs/") or path == "gateway/platform.json"],
    # it issues hub tokens of jobs' owners with the supervisor's service token
    withheld=(env.GATEWAY_API_TOKEN, env.PROXY_AUTH_TOKEN),
)

COMPONENTS: tuple[Component, ...] = (PROXY, HUB, GATEWAY, JOBS)  # start order; stopped in reverse
BY_NAME: dict[str, Component] = {component.name: component for component in COMPONENTS}
NAMES: tuple[str, ...] = tuple(BY_NAME)

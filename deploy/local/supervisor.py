"""`platform up/down/status` for the local target: the real hub and gateway on this machine.

Three supervised components, each a detached process with a record under `<state>/run/`
and a log under `<state>/logs/`:

- proxy: configurable-http-proxy, long-lived, so that restarting the hub keeps the routes
  to running notebook servers;
- hub: JupyterHub from `<state>/build/hub/jupyterhub_config.py`;
- gateway: dask-gateway-server from `<state>/build/gateway/dask_gateway_config.py`.

`up` is idempotent: a component whose inputs (rendered files, command, runtime values)
did not change is left alone; one that changed is restarted by itself. Notebook servers
and Dask clusters run in sessions of their own, so restarting the hub or the gateway does
not touch them. `down` stops the components and every process of the platform, by PID.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import psutil

from deploy.build_dir import load_for_target
from deploy.files import replace_tree_atomic
from deploy.local import passwords, processes
from deploy.local.state import Layout, secret, write_private
from deploy.ports import free_port
from deploy.ports import is_free as port_free
from render.hub_config import GATEWAY_PATH
from render.schema import Platform

HUB_CONFIG = "hub/jupyterhub_config.py"
GATEWAY_CONFIG = "gateway/dask_gateway_config.py"
DEFAULT_HUB_PORT = 8000
COMPONENTS = ("proxy", "hub", "gateway")  # start order; stopped in reverse


class SupervisorError(Exception):
    """Something on this machine went wrong (a port, a process, a health check)."""


@dataclass(frozen=True)
class UserLogin:
    name: str
    admin: bool
    password_set: bool


@dataclass
class UpResult:
    name: str
    state_dir: Path
    hub_url: str
    gateway_url: str | None
    scheduler_address: str | None = None
    started: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    users: list[UserLogin] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    up: bool
    pid: int | None
    address: str
    version: str | None
    detail: str = ""

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "up": self.up,
            "pid": self.pid,
            "address": self.address,
            "version": self.version,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class DownResult:
    stopped: list[int]
    survivors: list[int]


# -- runtime: ports, URLs, secrets, environment -------------------------------------------


@dataclass(frozen=True)
class Runtime:
    layout: Layout
    ports: Mapping[str, int]

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
        return f"tls://127.0.0.1:{self.ports['gateway']}"

    @property
    def discovery_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['discovery']}"

    @property
    def pages_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['pages']}"

    def secret(self, name: str) -> str:
        return secret(self.layout.secrets / name)

    def environment(self) -> dict[str, str]:
        """The environment every component starts with: the caller's, minus anything that
        belongs to another hub or gateway, plus this platform's runtime values."""
        foreign = ("GRATICULE_", "JUPYTERHUB_", "JPY_", "DASK_GATEWAY", "CONFIGPROXY_")
        env = {key: value for key, value in os.environ.items() if not key.startswith(foreign)}
        env.update(
            {
                processes.MARKER: str(self.layout.root),
                "GRATICULE_HUB_URL": self.hub_url,
                "GRATICULE_HUB_API_URL": self.hub_api_url,
                "GRATICULE_HUB_BIND_URL": self.hub_bind_url,
                "GRATICULE_PROXY_API_URL": self.proxy_api_url,
                "GRATICULE_GATEWAY_URL": self.gateway_url,
                "GRATICULE_GATEWAY_SCHEDULER_URL": self.gateway_scheduler_url,
                "GRATICULE_GATEWAY_API_TOKEN": self.secret("gateway_api_token"),
                "GRATICULE_ADMIN_API_TOKEN": self.secret("admin_api_token"),
                "CONFIGPROXY_AUTH_TOKEN": self.secret("proxy_auth_token"),
            }
        )
        env.update({key: os.environ[key] for key in OPERATOR_SETTINGS if os.environ.get(key)})
        return env

    def environment_of(self, name: str) -> dict[str, str]:
        """A component's environment: each gets only the secrets it uses."""
        env = self.environment()
        if name == "hub":
            env["GRATICULE_GATEWAY_SERVICE_URL"] = self.gateway_service_url
            env["GRATICULE_DISCOVERY_URL"] = self.discovery_url
            env["GRATICULE_PAGES_URL"] = self.pages_url
        if name == "gateway":  # its own HTTP listens where the hub's proxy reaches it
            env["GRATICULE_GATEWAY_URL"] = self.gateway_service_url
        unneeded = {
            "proxy": ("GRATICULE_GATEWAY_API_TOKEN", "GRATICULE_ADMIN_API_TOKEN"),
            "hub": (),
            "gateway": ("GRATICULE_ADMIN_API_TOKEN", "CONFIGPROXY_AUTH_TOKEN"),
        }[name]
        for key in unneeded:
            env.pop(key)
        return env


def _runtime_path(layout: Layout) -> Path:
    return layout.run / "runtime.json"


def load_runtime(state_dir: Path) -> Runtime | None:
    layout = Layout(Path(state_dir).absolute())
    try:
        saved = json.loads(_runtime_path(layout).read_text())
    except (OSError, ValueError):
        return None
    return Runtime(layout, saved["ports"])


def _choose_ports(layout: Layout, hub_port: int | None, gateway_port: int | None) -> Runtime:
    """Ports chosen on the first `up` are kept after, so URLs and tokens stay valid."""
    previous = load_runtime(layout.root)
    ports = dict(previous.ports) if previous else {}
    if hub_port:
        ports["public"] = hub_port
    if gateway_port:
        ports["gateway"] = gateway_port
    if "public" not in ports:
        ports["public"] = DEFAULT_HUB_PORT if port_free(DEFAULT_HUB_PORT) else free_port()
    for name in ("proxy_api", "hub", "gateway", "gateway_web", "discovery", "pages"):
        if name not in ports:
            ports[name] = free_port()
    if len(set(ports.values())) != len(ports):
        raise SupervisorError(f"two components would share a port: {ports}")
    runtime = Runtime(layout, ports)
    write_private(_runtime_path(layout), json.dumps({"ports": ports}, indent=2, sort_keys=True) + "\n")
    return runtime


# -- render -------------------------------------------------------------------------------


def _render(platform: Platform, warnings: list[str]) -> dict[str, bytes]:
    from render import build

    try:
        return build.render(platform, "local")
    except build.RenderError as exc:
        if "is missing" not in str(exc):
            raise SupervisorError(str(exc)) from exc
    # Some other part of the build is not there yet: run the steps that are.
    files: dict[str, bytes] = {}
    for step in build.STEPS:
        try:
            function = build._load(step)
        except build.RenderError as exc:
            warnings.append(str(exc))
            continue
        arguments = (platform, "local") if step.takes_target else (platform,)
        files.update(build._run(step, function, *arguments))
    return files


# -- components ---------------------------------------------------------------------------


def _proxy_command(runtime: Runtime) -> list[str]:
    # configurable-http-proxy with websocket subprotocols passed through (see the module)
    return [
        sys.executable,
        "-m",
        "deploy.local.http_proxy",
        "--ip=127.0.0.1",
        f"--port={runtime.ports['public']}",
        "--api-ip=127.0.0.1",
        f"--api-port={runtime.ports['proxy_api']}",
        f"--default-target={runtime.hub_bind_url}",
        f"--error-target={runtime.hub_bind_url}/hub/error",
    ]


def _command(name: str, runtime: Runtime) -> list[str]:
    build = runtime.layout.build
    if name == "proxy":
        return _proxy_command(runtime)
    if name == "hub":
        return [sys.executable, "-m", "jupyterhub", "-f", str(build / HUB_CONFIG)]
    return [sys.executable, "-m", "dask_gateway_server", "-f", str(build / GATEWAY_CONFIG)]


def _address(name: str, runtime: Runtime) -> str:
    return {"proxy": runtime.proxy_api_url, "hub": runtime.hub_url, "gateway": runtime.gateway_url}[name]


def _inputs(name: str, files: Mapping[str, bytes]) -> list[str]:
    """The rendered files a component reads: a change to any of them restarts it."""
    if name == "proxy":
        return []
    if name == "hub":
        return [path for path in files if path.startswith("hub/")]
    return [path for path in files if not path.startswith(("hub/", "terraform/")) and path != "manifest.json"]


_PACKAGES = {"proxy": "configurable-http-proxy", "hub": "jupyterhub", "gateway": "dask-gateway-server"}


# Settings an operator gives through the environment (never platform.yaml): passed on to
# the components, while every other GRATICULE_* variable of the caller is dropped.
OPERATOR_SETTINGS = (
    "GRATICULE_LEDGER_URL",
    "GRATICULE_SMTP_HOST",
    "GRATICULE_SMTP_PORT",
    "GRATICULE_ALERTS_FROM",
    "GRATICULE_BUDGET_MIN_WINDOW",
    "GRATICULE_METER_INTERVAL",
)


def _fingerprint(name: str, cmd: list[str], env: Mapping[str, str], files: Mapping[str, bytes]) -> str:
    """What a running component was started from; `up` restarts it when this changes."""
    digest = hashlib.sha256(json.dumps(cmd).encode())
    for package in ("graticule", _PACKAGES[name]):  # an upgrade is a change too
        with contextlib.suppress(metadata.PackageNotFoundError):
            digest.update(f"{package}=={metadata.version(package)}\n".encode())
    for key in sorted(env):
        if key.startswith(("GRATICULE_", "CONFIGPROXY_")):
            digest.update(f"{key}={env[key]}\n".encode())
    for path in sorted(_inputs(name, files)):
        digest.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return digest.hexdigest()


def _http_ok(url: str, headers: Mapping[str, str] | None = None, timeout: float = 3) -> dict | None:
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


def _probe(name: str, runtime: Runtime) -> dict | None:
    if name == "proxy":
        token = runtime.secret("proxy_auth_token")
        return _http_ok(f"{runtime.proxy_api_url}/api/routes", {"Authorization": f"token {token}"})
    if name == "hub":  # the hub itself, not through the proxy (which has its own probe)
        return _http_ok(f"{runtime.hub_bind_url}/hub/api/")
    return _http_ok(f"{runtime.gateway_service_url}{GATEWAY_PATH}/api/health")


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(name: str, runtime: Runtime) -> None:
    record = processes.load_record(runtime.layout.run, name)
    proc = processes.process_of(record)
    services = _hub_services(proc) if name == "hub" else []
    survivors = processes.stop_component(record)
    survivors += processes.stop_all([s for s in services if s.is_running()])
    if survivors:
        raise SupervisorError(f"could not stop {name}: pids {[p.pid for p in survivors]} still run")
    processes.forget(runtime.layout.run, name)


def _hub_services(hub: psutil.Process | None) -> list[psutil.Process]:
    """Hub-managed services (the idle culler): they go with the hub; notebook servers stay."""
    if hub is None:
        return []
    found = []
    for child in hub.children():
        with contextlib.suppress(psutil.Error):
            if "JUPYTERHUB_SERVICE_NAME" in child.environ() and "JUPYTERHUB_USER" not in child.environ():
                found.append(child)
    return found


def _launch(
    name: str,
    runtime: Runtime,
    files: Mapping[str, bytes],
    result: UpResult,
    force: bool = False,
) -> processes.Record | None:
    """Start `name` if it is not running or its inputs changed (then it is restarted);
    returns the new process's record, or None when the running one is kept."""
    cmd = _command(name, runtime)
    env = runtime.environment_of(name)
    fingerprint = _fingerprint(name, cmd, env, files)
    record = processes.load_record(runtime.layout.run, name)
    running = processes.process_of(record) is not None
    if not force and running and record.fingerprint == fingerprint and _probe(name, runtime) is not None:
        result.unchanged.append(name)
        return None
    if running:
        _stop(name, runtime)
    for port in _ports_of(name, runtime):
        # Just stopped: give its sockets (and helpers) a moment; otherwise fail fast.
        if not _release_port(port, runtime.layout.root, timeout=10.0 if running else 1.0):
            raise SupervisorError(
                f"cannot start {name}: port {port} on 127.0.0.1 is taken by another program "
                "(free it, or choose other ports with --port / --gateway-port)"
            )
    cwd = {"proxy": runtime.layout.run, "hub": runtime.layout.hub, "gateway": runtime.layout.gateway}[name]
    log = runtime.layout.logs / f"{name}.log"
    record = processes.start(name, cmd, env, cwd, log, fingerprint, _address(name, runtime))
    processes.save_record(runtime.layout.run, record)
    (result.restarted if running else result.started).append(name)
    return record


def _release_port(port: int, state_dir: Path, timeout: float = 10.0) -> bool:
    """True once `port` is free. A leftover helper of this platform's own stopped
    component (e.g. dask-gateway's proxy, which exits a moment after its parent) is
    waited for, then stopped; a foreign program holding the port is left alone."""
    deadline = time.monotonic() + timeout
    stopped_ours = False
    while not port_free(port):
        if time.monotonic() > deadline:
            if stopped_ours:
                return False
            holders = [
                psutil.Process(conn.pid)
                for conn in psutil.net_connections(kind="tcp")
                if conn.pid and conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN
            ]
            ours = [proc for proc in holders if proc in processes.marked(state_dir)]
            if not ours or len(ours) != len(holders):
                return False
            processes.stop_all(ours)
            stopped_ours = True
            deadline = time.monotonic() + timeout
        time.sleep(0.1)
    return True


def _ports_of(name: str, runtime: Runtime) -> list[int]:
    ports = runtime.ports
    return {
        "proxy": [ports["public"], ports["proxy_api"]],
        "hub": [ports["hub"], ports["discovery"], ports["pages"]],  # its services go with the hub
        "gateway": [ports["gateway"], ports["gateway_web"]],
    }[name]


def _wait_all(launched: Mapping[str, processes.Record | None], runtime: Runtime, timeout: float) -> None:
    """Wait until every launched component answers; fail on the first that dies or stalls."""
    waiting = {name: record for name, record in launched.items() if record is not None}
    deadline = time.monotonic() + timeout
    while waiting:
        for name, record in list(waiting.items()):
            log = runtime.layout.logs / f"{name}.log"
            if processes.process_of(record) is None:
                raise SupervisorError(f"{name} exited during start-up; see {log}:\n{_tail(log, 15)}")
            if _probe(name, runtime) is not None:
                del waiting[name]
        if waiting and time.monotonic() > deadline:
            name = next(iter(waiting))
            log = runtime.layout.logs / f"{name}.log"
            raise SupervisorError(
                f"{name} did not become healthy within {timeout:.0f} s; see {log}:\n{_tail(log, 15)}"
            )
        if waiting:
            time.sleep(0.2)


def _prune_users(runtime: Runtime, platform: Platform) -> None:
    """Users gone from platform.yaml lose their servers and tokens (see deploy.hub.sync)."""
    from deploy.hub.sync import prune_users

    try:
        prune_users(runtime.hub_api_url, runtime.secret("admin_api_token"), [u.name for u in platform.users])
    except (OSError, RuntimeError) as exc:
        raise SupervisorError(f"the hub is up but removing users who left platform.yaml failed: {exc}") from exc


# -- hub API ------------------------------------------------------------------------------


def _hub_request(runtime: Runtime, method: str, path: str, body: dict | None = None) -> dict:
    token = runtime.secret("admin_api_token")
    request = urllib.request.Request(
        runtime.hub_api_url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = response.read()
    return json.loads(payload) if payload else {}


def user_token(state_dir: Path, username: str, note: str = "platform token") -> str:
    """A new API token for `username`, issued by the hub (the user must be in platform.yaml)."""
    runtime = load_runtime(state_dir)
    if runtime is None or _probe("hub", runtime) is None:
        raise SupervisorError(f"the hub of {state_dir} is not running: run `platform up` first")
    try:
        return _hub_request(runtime, "POST", f"/users/{username}/tokens", {"note": note})["token"]
    except urllib.error.HTTPError as exc:
        raise SupervisorError(f"the hub refused a token for {username!r}: HTTP {exc.code}") from None


# -- up / down / status -------------------------------------------------------------------


def up(
    config_path: Path,
    state_dir: Path | None = None,
    *,
    hub_port: int | None = None,
    gateway_port: int | None = None,
    timeout: float = 180.0,
) -> UpResult:
    """Render `config_path` for the local target and bring the platform to it.

    Raises render.errors.ConfigErrors (invalid file: nothing touched) or SupervisorError.
    """
    config_path = Path(config_path)
    platform = load_for_target(config_path, str(config_path), "local")
    layout = Layout(Path(state_dir or Path(".platform") / platform.name).absolute())
    layout.create()
    with _exclusive(layout):
        return _up(platform, config_path, layout, hub_port, gateway_port, timeout)


@contextlib.contextmanager
def _exclusive(layout: Layout):
    """One `up` or `down` at a time per state directory."""
    layout.run.mkdir(parents=True, exist_ok=True)
    with open(layout.run / "lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SupervisorError(f"another `platform up` or `down` is working on {layout.root}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _up(
    platform: Platform,
    config_path: Path,
    layout: Layout,
    hub_port: int | None,
    gateway_port: int | None,
    timeout: float,
) -> UpResult:
    warnings: list[str] = []
    files = _render(platform, warnings)
    runtime = _choose_ports(layout, hub_port, gateway_port)
    secret(layout.secrets / "cookie_secret")  # JupyterHub reads it from the file
    replace_tree_atomic(layout.build, files)
    has_gateway = GATEWAY_CONFIG in files
    result = UpResult(
        name=platform.name,
        state_dir=layout.root,
        hub_url=runtime.hub_url,
        gateway_url=runtime.gateway_url if has_gateway else None,
        scheduler_address=runtime.gateway_scheduler_url if has_gateway else None,
        warnings=warnings,
    )
    _environments(platform, config_path, layout.root)
    # The gateway does not need the hub to start, the hub needs the proxy: overlap them.
    launched = {"proxy": _launch("proxy", runtime, files, result)}
    if has_gateway:
        launched["gateway"] = _launch("gateway", runtime, files, result)
    else:
        _stop("gateway", runtime)
        result.warnings.append("no gateway configuration was rendered: the dask-gateway server is not started")
    _wait_all({"proxy": launched["proxy"]}, runtime, timeout)
    # A new proxy starts with no routes: a (re)started hub puts back those of running servers.
    proxy_is_new = "proxy" in result.started or "proxy" in result.restarted
    launched["hub"] = _launch("hub", runtime, files, result, force=proxy_is_new)
    _wait_all(launched, runtime, timeout)
    _prune_users(runtime, platform)
    for names in (result.started, result.restarted, result.unchanged):
        names.sort(key=COMPONENTS.index)
    result.users = [
        UserLogin(user.name, name_is_admin(platform, user.name), passwords.has_password(layout.root, user.name))
        for user in platform.users
    ]
    return result


def _environments(platform: Platform, config_path: Path, state_dir: Path) -> dict[str, str]:
    """Build the locked environments (once each) before the gateway may run clusters in them."""
    from deploy.environments import ensure, uv

    try:
        return ensure.apply_environments(platform, config_path, state_dir)
    except (ValueError, uv.UvError) as exc:
        raise SupervisorError(f"environments: {exc}") from None


def name_is_admin(platform: Platform, name: str) -> bool:
    from render import entitlements

    user = platform.user(name)
    return bool(user and entitlements.is_admin(platform, user))


def down(state_dir: Path) -> DownResult:
    """Stop every process of the platform at `state_dir`, by PID, children included."""
    layout = Layout(Path(state_dir).absolute())
    if not layout.root.exists():
        return DownResult(stopped=[], survivors=[])
    with _exclusive(layout):
        return _down(layout)


def _down(layout: Layout) -> DownResult:
    components = [
        proc
        for name in reversed(COMPONENTS)
        if (proc := processes.process_of(processes.load_record(layout.run, name))) is not None
    ]
    stopped = {proc.pid for proc in components}
    # The components with their process trees first, then what they started detached:
    # Dask processes from the gateway's pid files, then anything else carrying the marker.
    survivors = processes.stop_all(components)
    for sweep in (_gateway_cluster_processes, lambda layout: processes.marked(layout.root)):
        found = [proc for proc in sweep(layout) if processes.is_alive(proc)]
        stopped.update(proc.pid for proc in found)
        survivors += processes.stop_all(found)
    for name in COMPONENTS:
        processes.forget(layout.run, name)
    alive = sorted({proc.pid for proc in survivors if processes.is_alive(proc)})
    return DownResult(stopped=sorted(stopped), survivors=alive)


def _gateway_cluster_processes(layout: Layout) -> list[psutil.Process]:
    """Schedulers and workers from the gateway's own pid files (<state>/gateway/pids/)."""
    found = []
    for path in sorted((layout.gateway / "pids").glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, psutil.Error):
            entry = json.loads(path.read_text())
            proc = psutil.Process(int(entry["pid"]))
            if abs(proc.create_time() - float(entry["started"])) < 0.05:
                found.append(proc)
    return found


def status(state_dir: Path) -> list[ComponentStatus]:
    layout = Layout(Path(state_dir).absolute())
    runtime = load_runtime(layout.root)
    configured = (layout.build / GATEWAY_CONFIG).exists()
    report = []
    for name in COMPONENTS:
        if name == "gateway" and not configured:
            continue
        record = processes.load_record(layout.run, name)
        proc = processes.process_of(record)
        address = _address(name, runtime) if runtime else ""
        probe = _probe(name, runtime) if proc is not None and runtime else None
        healthy = proc is not None and probe is not None
        detail = "" if healthy else ("not started" if proc is None else "running but not answering")
        report.append(
            ComponentStatus(
                name=name,
                up=healthy,
                pid=proc.pid if proc else None,
                address=address,
                version=_version(name, runtime, probe) if healthy else None,
                detail=detail,
            )
        )
    return report


def _version(name: str, runtime: Runtime, probe: dict | None) -> str | None:
    if name == "hub":
        return (probe or {}).get("version")
    if name == "gateway":
        answer = _http_ok(f"{runtime.gateway_service_url}{GATEWAY_PATH}/api/version")
        if answer and answer.get("version"):
            return answer["version"]
        package = "dask-gateway-server"
    else:
        package = "configurable-http-proxy"
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def log_path(state_dir: Path, which: str) -> Path | None:
    """The log of a component, or of a Dask cluster (its scheduler's log) by name."""
    layout = Layout(Path(state_dir).absolute())
    if which in COMPONENTS:
        return layout.logs / f"{which}.log"
    matches = sorted(layout.gateway.rglob(f"{which}*.log")) + sorted(
        path for path in layout.gateway.rglob("*.log") if which in path.parts
    )
    return matches[0] if matches else None

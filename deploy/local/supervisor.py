"""`platform up/down/status` for the local target: the real hub and gateway on this machine.

Four supervised components (one `Component` record each, in deploy.runtime.components),
each a detached process with a record under `<state>/run/` and a log under `<state>/logs/`:

- proxy: configurable-http-proxy, long-lived, so that restarting the hub keeps the routes
  to running notebook servers;
- hub: JupyterHub from `<state>/build/hub/jupyterhub_config.py`;
- gateway: dask-gateway-server from `<state>/build/gateway/dask_gateway_config.py`;
- jobs: the batch jobs scheduler (deploy.jobs.service), whose drivers run detached.

`up` is idempotent: a component whose inputs (rendered files, command, runtime values)
did not change is left alone; one that changed is restarted by itself. Notebook servers
and Dask clusters run in sessions of their own, so restarting the hub or the gateway does
not touch them. `down` stops the components and every process of the platform, by PID.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Mapping
from pathlib import Path

import psutil

from deploy.build_dir import load_for_target
from deploy.errors import RuntimeFailure
from deploy.files import replace_tree_atomic
from deploy.gateway.processes import PidFiles
from deploy.hub import passwords
from deploy.local import processes
from deploy.local.results import ComponentStatus, DownResult, UpResult, UserLogin
from deploy.ports import is_free as port_free
from deploy.runtime.addresses import Runtime, choose_ports, load_runtime
from deploy.runtime.components import (
    BY_NAME,
    COMPONENTS,
    GATEWAY,
    GATEWAY_CONFIG,
    HUB,
    JOBS,
    NAMES,
    PROXY,
    Component,
    unrouted_services,
)
from deploy.runtime.hub_api import HubAPI, HubAPIError
from deploy.runtime.liveness import live_process
from deploy.runtime.state import Layout, secret, state_dir_for
from render.schema import Platform


class SupervisorError(RuntimeFailure):
    """Something on this machine went wrong (a port, a process, a health check)."""


# -- render -------------------------------------------------------------------------------


def _render(platform: Platform, warnings: list[str]) -> dict[str, bytes]:
    """The local build; while some render step does not exist yet, what the others make."""
    from render import build

    try:
        files, missing = build.render_available(platform, "local")
    except build.RenderError as exc:
        raise SupervisorError(str(exc)) from exc
    warnings.extend(missing)
    return files


# -- components ---------------------------------------------------------------------------


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _log(component: Component, layout: Layout) -> Path:
    return layout.logs / f"{component.name}.log"


def _stop(component: Component, runtime: Runtime) -> None:
    record = processes.load_record(runtime.layout.run, component.name)
    proc = processes.process_of(record)
    services = _hub_services(proc) if component is HUB else []
    survivors = processes.stop_component(record)
    survivors += processes.stop_all([s for s in services if s.is_running()])
    if survivors:
        raise SupervisorError(f"could not stop {component.name}: pids {[p.pid for p in survivors]} still run")
    processes.forget(runtime.layout.run, component.name)


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
    component: Component, runtime: Runtime, files: Mapping[str, bytes], result: UpResult, force: bool = False
) -> processes.Record | None:
    """Start `component` if it is not running or its inputs changed (then it is restarted);
    returns the new process's record, or None when the running one is kept."""
    name = component.name
    cmd = component.command(runtime)
    env = component.environment(runtime)
    fingerprint = component.fingerprint(cmd, env, files)
    record = processes.load_record(runtime.layout.run, name)
    running = processes.process_of(record) is not None
    if not force and running and record.fingerprint == fingerprint and component.probe(runtime) is not None:
        result.unchanged.append(name)
        return None
    if running:
        _stop(component, runtime)
    for port in component.ports(runtime):
        # Just stopped: give its sockets (and helpers) a moment; otherwise fail fast.
        if not _release_port(port, runtime.layout.root, timeout=10.0 if running else 1.0):
            raise SupervisorError(
                f"cannot start {name}: port {port} on 127.0.0.1 is taken by another program "
                "(free it, or choose other ports with --port / --gateway-port)"
            )
    cwd = component.workdir(runtime.layout)
    log = _log(component, runtime.layout)
    record = processes.start(name, cmd, env, cwd, log, fingerprint, component.address(runtime))
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


def _wait_all(launched: Mapping[Component, processes.Record | None], runtime: Runtime, timeout: float) -> None:
    """Wait until every launched component answers; fail on the first that dies or stalls."""
    waiting = {component: record for component, record in launched.items() if record is not None}
    deadline = time.monotonic() + timeout
    while waiting:
        for component, record in list(waiting.items()):
            log = _log(component, runtime.layout)
            if processes.process_of(record) is None:
                raise SupervisorError(f"{component.name} exited during start-up; see {log}:\n{_tail(log, 15)}")
            if component.probe(runtime) is not None:
                del waiting[component]
        if waiting and time.monotonic() > deadline:
            component = next(iter(waiting))
            log = _log(component, runtime.layout)
            raise SupervisorError(
                f"{component.name} did not become healthy within {timeout:.0f} s; see {log}:\n{_tail(log, 15)}"
            )
        if waiting:
            time.sleep(0.2)


def _wait_routed(runtime: Runtime, has_gateway: bool, timeout: float) -> None:
    """`up` returns only once the proxy routes the hub's services (see unrouted_services)."""
    deadline = time.monotonic() + timeout
    while missing := unrouted_services(runtime, has_gateway):
        if time.monotonic() > deadline:
            log = _log(HUB, runtime.layout)
            raise SupervisorError(
                f"the hub did not route its services {sorted(missing)} within {timeout:.0f} s; see {log}:\n"
                f"{_tail(log, 15)}"
            )
        time.sleep(0.2)


def _hub_api(runtime: Runtime) -> HubAPI:
    return HubAPI(runtime.hub_api_url, runtime.secret("admin_api_token"))


def _prune_users(runtime: Runtime, platform: Platform) -> None:
    """Users gone from platform.yaml lose their servers and tokens (see deploy.runtime.hub_api)."""
    try:
        _hub_api(runtime).prune_users([u.name for u in platform.users])
    except (OSError, HubAPIError) as exc:
        raise SupervisorError(f"the hub is up but removing users who left platform.yaml failed: {exc}") from exc


def user_token(state_dir: Path, username: str, note: str = "platform token") -> str:
    """A new API token for `username`, issued by the hub (the user must be in platform.yaml)."""
    runtime = load_runtime(state_dir)
    if runtime is None or HUB.probe(runtime) is None:
        raise SupervisorError(f"the hub of {state_dir} is not running: run `platform up` first")
    try:
        return _hub_api(runtime).new_token(username, note)
    except HubAPIError as exc:
        raise SupervisorError(str(exc)) from None


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
    layout = Layout(state_dir_for(platform.name, state_dir))
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
    try:
        runtime = choose_ports(layout, hub_port, gateway_port)
    except RuntimeFailure as exc:
        raise SupervisorError(str(exc)) from None
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
    launched = {PROXY: _launch(PROXY, runtime, files, result)}
    if has_gateway:
        launched[GATEWAY] = _launch(GATEWAY, runtime, files, result)
        launched[JOBS] = _launch(JOBS, runtime, files, result)  # the jobs scheduler: its drivers need the gateway
    else:
        for component in (GATEWAY, JOBS):
            _stop(component, runtime)
        result.warnings.append("no gateway configuration was rendered: the dask-gateway server is not started")
    _wait_all({PROXY: launched[PROXY]}, runtime, timeout)
    # A new proxy starts with no routes: a (re)started hub puts back those of running servers.
    proxy_is_new = "proxy" in result.started or "proxy" in result.restarted
    launched[HUB] = _launch(HUB, runtime, files, result, force=proxy_is_new)
    _wait_all(launched, runtime, timeout)
    _wait_routed(runtime, has_gateway, timeout)
    _prune_users(runtime, platform)
    for names in (result.started, result.restarted, result.unchanged):
        names.sort(key=NAMES.index)
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
        for name in reversed(NAMES)
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
    for name in NAMES:
        processes.forget(layout.run, name)
    alive = sorted({proc.pid for proc in survivors if processes.is_alive(proc)})
    return DownResult(stopped=sorted(stopped), survivors=alive)


def _gateway_cluster_processes(layout: Layout) -> list[psutil.Process]:
    """Schedulers and workers from the gateway's own pid files (<state>/gateway/pids/)."""
    pidfiles = PidFiles(layout.gateway / "pids")
    return [proc for _, pid, started in pidfiles.entries() if (proc := live_process(pid, started)) is not None]


def status(state_dir: Path) -> list[ComponentStatus]:
    layout = Layout(Path(state_dir).absolute())
    runtime = load_runtime(layout.root)
    configured = (layout.build / GATEWAY_CONFIG).exists()
    report = []
    for component in COMPONENTS:
        if component in (GATEWAY, JOBS) and not configured:
            continue
        proc = processes.process_of(processes.load_record(layout.run, component.name))
        probe = component.probe(runtime) if proc is not None and runtime else None
        healthy = proc is not None and probe is not None
        detail = "" if healthy else ("not started" if proc is None else "running but not answering")
        report.append(
            ComponentStatus(
                name=component.name,
                up=healthy,
                pid=proc.pid if proc else None,
                address=component.address(runtime) if runtime else "",
                version=component.version(runtime, probe) if healthy else None,
                detail=detail,
            )
        )
    return report


def log_path(state_dir: Path, which: str) -> Path | None:
    """The log of a component, or of a Dask cluster (its scheduler's log) by name."""
    layout = Layout(Path(state_dir).absolute())
    if which in BY_NAME:
        return _log(BY_NAME[which], layout)
    matches = sorted(layout.gateway.rglob(f"{which}*.log")) + sorted(
        path for path in layout.gateway.rglob("*.log") if which in path.parts
    )
    return matches[0] if matches else None

"""A real local platform for tests: `platform up` on a config, guaranteed `platform down`.

    with local_platform(CONFIG_TEXT, tmp_path) as lp:
        token = lp.token("alice")
        lp.start_server("alice", token, profile="small")
        gateway = lp.gateway("alice")          # dask_gateway.Gateway with alice's token
        lp.up(CHANGED_CONFIG_TEXT)             # re-apply a changed platform.yaml

Everything runs through the real CLI (`python -m deploy.cli.main`) on free loopback
ports with a temporary state directory. On exit, even when the test failed, it runs
`platform down` and then checks by PID that nothing of the platform is left: the
components, their children, notebook servers and Dask processes (also those started
detached). Survivors are killed and, if the test had passed, reported as a failure.
For a module-scoped fixture, wrap it:

    @pytest.fixture(scope="module")
    def lp(tmp_path_factory):
        with local_platform(CONFIG, tmp_path_factory.mktemp("lp")) as handle:
            yield handle
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.support.procs import alive, free_port, kill_tree

REPO = Path(__file__).resolve().parents[2]


@dataclass
class HttpAnswer:
    status: int
    body: object  # parsed JSON, or text

    def json(self) -> dict:
        assert isinstance(self.body, dict | list), f"not JSON: {self.body!r}"
        return self.body


@dataclass
class LocalPlatform:
    workdir: Path
    config_path: Path
    state_dir: Path
    hub_port: int
    gateway_port: int
    timeout: float = 240
    outputs: list[str] = field(default_factory=list)
    seen: dict[int, float] = field(default_factory=dict)  # pid -> start time
    operator_env: dict[str, str] = field(default_factory=dict)  # operator settings (SMTP...) for `platform`

    # -- the CLI --------------------------------------------------------------------------

    def platform(self, *args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run `platform ARGS...` in the platform's working directory."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRATICULE_", "JUPYTERHUB_"))}
        env.update(self.operator_env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        done = subprocess.run(
            [sys.executable, "-m", "deploy.cli.main", *args],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout or self.timeout * 3,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"platform {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}\n"
                f"{self.component_logs()}"
            )
        return done

    def up(self, config_text: str | None = None) -> subprocess.CompletedProcess:
        """(Re-)apply the platform, optionally with a new platform.yaml text."""
        if config_text is not None:
            self.config_path.write_text(config_text)
        done = self.platform(
            "up", str(self.config_path), "--state", str(self.state_dir),
            "--port", str(self.hub_port), "--gateway-port", str(self.gateway_port),
            "--timeout", str(self.timeout),
        )
        self.outputs.append(done.stdout)
        self.remember_pids()
        return done

    def down(self) -> subprocess.CompletedProcess:
        self.remember_pids()
        return self.platform("down", "--state", str(self.state_dir))

    def status(self) -> dict:
        done = self.platform("status", "--state", str(self.state_dir), "--json", check=False)
        return json.loads(done.stdout)

    def token(self, user: str) -> str:
        done = self.platform("token", user, "--file", str(self.config_path), "--state", str(self.state_dir))
        return done.stdout.strip()

    # -- addresses --------------------------------------------------------------------------

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    @property
    def hub_api_url(self) -> str:
        return f"{self.hub_url}/hub/api"

    @property
    def gateway_url(self) -> str:
        """The gateway's API and dashboards: behind the hub's proxy (the front door)."""
        return f"{self.hub_url}/services/dask-gateway"

    @property
    def scheduler_address(self) -> str:
        """The gateway's published TLS proxy to Dask schedulers."""
        return f"tls://127.0.0.1:{self.gateway_port}"

    # -- the hub's REST API -------------------------------------------------------------

    def hub_api(self, method: str, path: str, token: str, body: dict | None = None) -> HttpAnswer:
        return http(method, self.hub_api_url + path, token, body)

    def start_server(self, user: str, token: str, timeout: float = 180, **options: str) -> dict:
        """Start `user`'s notebook server through the REST API; the server model once ready."""
        answer = self.hub_api("POST", f"/users/{user}/server", token, options or None)
        assert answer.status in (201, 202), f"spawn of {user} refused: {answer}"
        return self.wait_server(user, token, timeout)

    def wait_server(self, user: str, token: str, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.hub_api("GET", f"/users/{user}", token).json()["servers"].get("", {})
            if server.get("ready"):
                self.remember_pids()
                return server
            if not server.get("pending") and not server.get("ready"):
                raise AssertionError(f"{user}'s server stopped while starting:\n{self.server_log(user)}")
            time.sleep(0.5)
        raise AssertionError(f"{user}'s server not ready after {timeout} s:\n{self.server_log(user)}")

    def server_pid(self, user: str) -> int | None:
        """PID of `user`'s notebook server process, found by its environment."""
        for proc in self.platform_processes():
            with contextlib.suppress(psutil.Error):
                env = proc.environ()
                if env.get("JUPYTERHUB_USER") == user and "jupyterhub.singleuser" in " ".join(proc.cmdline()):
                    return proc.pid
        return None

    # -- dask-gateway ------------------------------------------------------------------

    def gateway(self, user: str, token: str | None = None):
        """A dask_gateway.Gateway client for `user` (a new token unless one is given)."""
        from dask_gateway import JupyterHubAuth

        from tests.support.gateway_client import Gateway

        return Gateway(
            address=self.gateway_url,
            proxy_address=self.scheduler_address,
            auth=JupyterHubAuth(api_token=token or self.token(user)),
        )

    # -- logs and processes -------------------------------------------------------------

    def log_tail(self, component: str, lines: int = 40) -> str:
        path = self.state_dir / "logs" / f"{component}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(none)"

    def server_log(self, user: str) -> str:
        path = self.state_dir / "logs" / "servers" / f"{user}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no server log)"

    def cluster_logs(self, lines: int = 30) -> str:
        """The tail of every scheduler and worker log the gateway wrote, for failures."""
        logs = sorted((self.state_dir / "gateway" / "logs").glob("*/*.log"))
        parts = []
        for path in logs:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.parent.name}/{path.name} ---\n" + "\n".join(tail))
        return "\n".join(parts) or "(no cluster logs)"

    def component_logs(self) -> str:
        """The tails of the hub's and the gateway's logs."""
        return f"--- hub log ---\n{self.log_tail('hub')}\n--- gateway log ---\n{self.log_tail('gateway')}"

    def diagnostics(self, user: str) -> str:
        """Hub, gateway, notebook server and cluster logs: what a failed test prints."""
        return (
            f"{self.component_logs()}\n"
            f"--- {user}'s server log ---\n{self.server_log(user)}\n{self.cluster_logs()}"
        )

    def platform_processes(self) -> list[psutil.Process]:
        """Every live process of this platform: recorded components and their trees,
        the gateway's cluster processes, and anything carrying the state-dir marker."""
        found: dict[int, psutil.Process] = {}
        run = self.state_dir / "run"
        pid_files = [*run.glob("*.json"), *(self.state_dir / "gateway" / "pids").glob("*.json")]
        for path in pid_files:
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError, psutil.Error):
                pid = int(json.loads(path.read_text())["pid"])
                proc = psutil.Process(pid)
                for member in [proc, *proc.children(recursive=True)]:
                    found[member.pid] = member
        wanted = str(self.state_dir)
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if proc.pid != os.getpid() and proc.environ().get("GRATICULE_STATE_DIR") == wanted:
                    found[proc.pid] = proc
        return [proc for proc in found.values() if alive(proc.pid)]

    def remember_pids(self) -> set[int]:
        procs = self.platform_processes()
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                self.seen[proc.pid] = proc.create_time()
        return {proc.pid for proc in procs}

    def survivors(self) -> list[int]:
        """Processes of this platform still alive: seen earlier (same PID *and* start
        time, so a recycled PID does not count) or found now."""
        left = {proc.pid for proc in self.platform_processes()}
        for pid, started in self.seen.items():
            with contextlib.suppress(psutil.Error):
                if alive(pid) and abs(psutil.Process(pid).create_time() - started) < 0.05:
                    left.add(pid)
        return sorted(left)


def http(method: str, url: str, token: str | None = None, body: dict | None = None) -> HttpAnswer:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"token {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    try:
        parsed: object = json.loads(payload) if payload else None
    except ValueError:
        parsed = payload.decode(errors="replace")
    return HttpAnswer(status, parsed)


@contextlib.contextmanager
def local_platform(
    config_text: str, workdir: Path, *, timeout: float = 240, operator_env: dict[str, str] | None = None
) -> Iterator[LocalPlatform]:
    """`platform up` on `config_text` in `workdir`; always `platform down` + PID checks."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "platform.yaml"
    config_path.write_text(config_text)
    lp = LocalPlatform(
        workdir=workdir,
        config_path=config_path,
        state_dir=(workdir / "state").absolute(),
        hub_port=free_port(),
        gateway_port=free_port(),
        timeout=timeout,
        operator_env=dict(operator_env or {}),
    )
    failed = False
    try:
        lp.up()
        yield lp
    except BaseException:
        failed = True
        raise
    finally:
        _teardown(lp, failed)


def _teardown(lp: LocalPlatform, failed: bool) -> None:
    lp.remember_pids()
    problems = []
    try:
        lp.down()
    except Exception as exc:  # still kill by PID below
        problems.append(f"platform down failed: {exc}")
    deadline = time.monotonic() + 10
    while lp.survivors() and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = lp.survivors()
    for pid in survivors:
        kill_tree(pid)
    if survivors:
        problems.append(f"processes left after platform down: {survivors}")
    if problems and not failed:
        raise AssertionError("; ".join(problems))

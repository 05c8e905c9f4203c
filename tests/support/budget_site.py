"""The budgets end-to-end site: a real JupyterHub, the rendered dask-gateway configuration
with graticule's backend, an SMTP server (aiosmtpd) for alerts, and helpers to read the
ledger. Shared by tests/test_budgets_e2e*.py; each module runs its own site and stops
every process by PID at the end, detached cluster processes included.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from dask_gateway import JupyterHubAuth
from sqlalchemy import create_engine, select

from deploy.gateway.local import stop_local_clusters
from deploy.ledger.models import BudgetPeriod, UsageInterval
from render.gateway_config import render_gateway
from render.validate import validate_text
from tests.support.gateway_client import Gateway
from tests.support.procs import alive, free_port, kill_tree, wait_for_http

REPO = Path(__file__).resolve().parents[2]
PRICE = 36.0  # USD per process-hour: one cent per second
METER_INTERVAL_S = 1.0
CROWD = [f"user{n}" for n in range(10)]

PLATFORM = """\
apiVersion: graticule/v1
name: budgete2e
target: local
hub:
  auth: {provider: local}
  default_profile: small
groups:
  admins: {admin: true}
  stoppers: {budget: tiny, profiles: [small], environments: [default]}
  blockers: {budget: blocky, profiles: [small], environments: [default]}
  warners: {budget: soft, profiles: [small], environments: [default]}
  crowd: {budget: shared, profiles: [small], environments: [default]}
  rich: {budget: plenty, profiles: [small], environments: [default]}
  guests: {profiles: [small], environments: [default]}
users:
  - {name: alice, groups: [stoppers]}
  - {name: erin, groups: [blockers]}
  - {name: dave, groups: [warners]}
  - {name: frank, groups: [rich, admins]}
  - {name: nobody, groups: [guests]}
""" + "".join(f"  - {{name: {u}, groups: [crowd]}}\n" for u in CROWD) + f"""\
budgets:
  tiny: {{monthly_usd: 0.12, on_exhausted: stop}}
  blocky: {{monthly_usd: 0.08, on_exhausted: block_new}}
  soft: {{monthly_usd: 0.08, alerts: [50, 100], on_exhausted: warn}}
  shared: {{monthly_usd: 1000, max_cores: 3}}
  plenty: {{monthly_usd: 1000}}
profiles:
  small: {{cpu: 1, memory: 1GiB, price_per_hour_usd: {PRICE}}}
dask:
  default_profile: small
  max_workers: 10
  idle_timeout: 1h
  max_lifetime: 24h
environments:
  default: {{python: "3.11", packages: ["dask[distributed]==2026.8.0"]}}
integrations:
  alerts:
    email: [ops@example.org]
"""

HUB_CONFIG = """\
import os
c.JupyterHub.bind_url = os.environ["GRATICULE_HUB_URL"]
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = "{state}/hub/proxy.pid"
c.JupyterHub.db_url = "sqlite:///{state}/hub/jupyterhub.sqlite"
c.JupyterHub.cookie_secret = bytes.fromhex("{cookie_secret}")
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = set({users!r})
c.JupyterHub.services = [
    {{"name": "dask-gateway", "api_token": os.environ["GRATICULE_GATEWAY_API_TOKEN"]}},
    {{"name": "tester", "api_token": "{tester_token}"}},
]
c.JupyterHub.load_roles = [
    {{"name": "user", "scopes": ["self", "access:services!service=dask-gateway"]}},
    {{"name": "tester", "scopes": ["tokens", "admin:users"], "services": ["tester"]}},
]
"""


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.messages.append(envelope)
        return "250 OK"


@dataclass
class Site:
    root: Path
    state: Path
    build: Path
    env: dict[str, str]
    hub_url: str
    gateway_url: str
    tester_token: str
    inbox: Inbox
    gateway: subprocess.Popen | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def ledger_url(self) -> str:
        return f"sqlite:///{self.state / 'ledger.sqlite'}"

    def start_gateway(self) -> None:
        with open(self.state / "gateway.log", "ab") as log:
            self.gateway = subprocess.Popen(
                ["dask-gateway-server", "-f", str(self.build / "gateway" / "dask_gateway_config.py")],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.gateway.poll() is None, f"gateway exited: {self.log_tail()}"
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.gateway_url}/api/health", timeout=2):
                return
            time.sleep(0.1)
        raise TimeoutError("gateway not healthy")

    def stop_gateway(self) -> None:
        if self.gateway is not None and self.gateway.poll() is None:
            kill_tree(self.gateway.pid)
            self.gateway.wait(timeout=10)

    def log_tail(self) -> str:
        return (self.state / "gateway.log").read_text()[-3000:]

    def client(self, user: str) -> Gateway:
        if user not in self.tokens:
            request = urllib.request.Request(
                f"{self.hub_url}/hub/api/users/{user}/tokens",
                data=json.dumps({"note": "test"}).encode(),
                headers={"Authorization": f"token {self.tester_token}"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                self.tokens[user] = json.load(response)["token"]
        return Gateway(address=self.gateway_url, auth=JupyterHubAuth(api_token=self.tokens[user]))

    def intervals(self, **where) -> list:
        engine = create_engine(self.ledger_url)
        try:
            with engine.connect() as conn:
                query = select(UsageInterval).order_by(UsageInterval.id)
                for key, value in where.items():
                    query = query.where(getattr(UsageInterval, key) == value)
                return conn.execute(query).all()
        finally:
            engine.dispose()

    def exhausted_at(self, budget: str) -> float | None:
        """When the metering loop recorded the budget as exhausted this month (None: not yet)."""
        engine = create_engine(self.ledger_url)
        try:
            with engine.connect() as conn:
                query = select(BudgetPeriod.exhausted_at).where(BudgetPeriod.budget == budget)
                return conn.execute(query.order_by(BudgetPeriod.id.desc())).scalars().first()
        finally:
            engine.dispose()

    def metered_after(self, moment: float, cluster: str) -> bool:
        """Whether a metering pass that began after `moment` has seen the cluster: every pass
        refreshes the heartbeats of live processes, and acts on a pass's decisions (stops)
        before the next pass begins."""
        return any(row.heartbeat_at > moment for row in self.intervals(cluster=cluster) if row.ended_at is None)

    def usage(self, *args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "deploy.cli.main", "usage", str(self.root / "platform.yaml"),
             "--db", self.ledger_url, "--json", *args],
            capture_output=True, text=True, timeout=120, env={k: v for k, v in os.environ.items()
                                                               if not k.startswith("GRATICULE_")},
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def _cluster_pids(state: Path) -> set[int]:
    pids = set()
    for record in (state / "gateway" / "pids").glob("*.json"):
        with contextlib.suppress(ValueError, OSError):
            pids.add(json.loads(record.read_text())["pid"])
    return pids


@contextlib.contextmanager
def budget_site(root: Path) -> Iterator[Site]:
    """Start the hub, the SMTP server and the gateway under `root`; stop them all after."""
    state, build = root / "state", root / "build"
    (state / "hub").mkdir(parents=True)
    state.chmod(0o700)
    (root / "platform.yaml").write_text(PLATFORM)
    for path, data in render_gateway(validate_text(PLATFORM), "local").items():
        (build / path).parent.mkdir(parents=True, exist_ok=True)
        (build / path).write_bytes(data)
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    hub_port, gateway_port = free_port(), free_port()
    tester_token = secrets.token_hex(16)
    hub_url, gateway_url = f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{gateway_port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GRATICULE_")},
        # This checkout's code, not whichever checkout the editable install points at.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "GRATICULE_STATE_DIR": str(state),
        "GRATICULE_HUB_URL": hub_url,
        "GRATICULE_HUB_API_URL": f"{hub_url}/hub/api",
        "GRATICULE_GATEWAY_URL": gateway_url,
        "GRATICULE_GATEWAY_API_TOKEN": secrets.token_hex(16),
        "GRATICULE_METER_INTERVAL": str(METER_INTERVAL_S),
        "GRATICULE_BUDGET_MIN_WINDOW": "5",
        "GRATICULE_SMTP_HOST": smtp.hostname,
        "GRATICULE_SMTP_PORT": str(smtp.port),
    }
    users = ["alice", "erin", "dave", "frank", "nobody", *CROWD]
    (root / "jupyterhub_config.py").write_text(
        HUB_CONFIG.format(
            hub_port=free_port(), proxy_api_port=free_port(), state=state,
            cookie_secret=secrets.token_hex(32), tester_token=tester_token, users=users,
        )
    )
    with open(state / "hub.log", "ab") as hub_log:
        hub = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(root / "jupyterhub_config.py")],
            cwd=state / "hub", env=env, stdout=hub_log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    # The gateway serves under its hub service's path (it sits behind the hub's proxy).
    site = Site(root, state, build, env, hub_url, gateway_url + "/services/dask-gateway", tester_token, inbox)
    seen: set[int] = set()
    try:
        wait_for_http(f"{hub_url}/hub/api", timeout=90, proc=hub)
        site.start_gateway()
        yield site
    finally:
        seen = _cluster_pids(state)
        site.stop_gateway()
        stop_local_clusters(state)
        kill_tree(hub.pid)
        hub.wait(timeout=10)
        smtp.stop()
        survivors = [pid for pid in seen if alive(pid)]
        assert not survivors, f"cluster processes left running: {survivors}"



def wait_for(condition, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.2)


def status(gateway: Gateway, name: str) -> str:
    return gateway.get_cluster(name).status.name



def pids_of(site: Site, cluster: str) -> dict[str, int]:
    found = {}
    for record in (site.state / "gateway" / "pids").glob(f"{cluster}.*.json"):
        role = "scheduler" if record.name.endswith(".scheduler.json") else "worker"
        with contextlib.suppress(ValueError, OSError):
            found[role] = json.loads(record.read_text())["pid"]
    return found

"""The jobs component: `python -m deploy.jobs.service`, one per platform, beside the hub
and the gateway (deploy.runtime.components.JOBS).

It reads the rendered `jobs/jobs.json` (declared jobs) and `gateway/platform.json`
(budgets, who pays, profile sizes and prices), opens the usage database, and runs a
scheduler pass every `GRATICULE_JOBS_INTERVAL` seconds (default 2) until SIGTERM. A
heartbeat file (`<state>/run/jobs-heartbeat.json`) says it is alive. Everything it
decides is in the database, so stopping and starting it loses and doubles nothing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from deploy.budgets.policy import Policy
from deploy.environments.runtime import python_for_environment
from deploy.jobs.charging import Size
from deploy.jobs.hosts import LocalDriverHost
from deploy.jobs.scheduler import HubUnavailable, Scheduler
from deploy.ledger import Clock, Ledger, system_clock
from deploy.runtime import env
from deploy.runtime.hub_api import HubAPI, HubAPIError
from deploy.runtime.state import write_private
from render.gateway_spec import GatewaySpec
from render.job_spec import JOBS_FILE, RunSpec, load_jobs, load_owner_emails

log = logging.getLogger("graticule.jobs")
HEARTBEAT = "jobs-heartbeat.json"  # under <state>/run/, read by the component's probe
# what a driver must never inherit: the platform's own secrets
SECRETS = (env.ADMIN_API_TOKEN, env.GATEWAY_API_TOKEN, env.PROXY_AUTH_TOKEN, env.OAUTH_CLIENT_SECRET)


class HubCredentials:
    """Tokens of a job's owner from the hub, with the supervisor's service token."""

    def __init__(self, api: HubAPI) -> None:
        self.api = api

    def issue(self, owner: str, lifetime_s: int) -> tuple[str, str]:
        body = {"note": "graticule job run", "expires_in": int(lifetime_s)}
        try:
            status, answer = self.api.call("POST", f"/users/{owner}/tokens", body)
        except OSError as exc:
            raise HubUnavailable(f"the hub at {self.api.api_url} does not answer: {exc}") from None
        if status >= 500 or status == 424:
            raise HubUnavailable(f"the hub answered HTTP {status}")
        if status >= 300 or not isinstance(answer, dict):
            raise HubAPIError(f"the hub refused a token for {owner!r}: HTTP {status}", status)
        return answer["token"], answer["id"]

    def revoke(self, owner: str, token_id: str) -> None:
        self.api.call("DELETE", f"/users/{owner}/tokens/{token_id}")


def driver_environment(base: dict[str, str], spec: RunSpec, token: str | None) -> dict[str, str]:
    """The component's environment without its secrets, with the owner's token: what the
    SDK inside the driver needs to reach the gateway as the owner."""
    environment = {key: value for key, value in base.items() if key not in SECRETS}
    environment.pop("JUPYTERHUB_API_TOKEN", None)
    if token:
        environment[env.TOKEN] = token
    environment["JUPYTERHUB_USER"] = spec.owner
    return environment


def build_scheduler(state: Path, environ: dict[str, str], clock: Clock = system_clock) -> Scheduler:
    """The scheduler of the platform at `state`; `environ` is the component's environment."""
    build = state / "build"
    spec = GatewaySpec.from_json(json.loads((build / "gateway" / "platform.json").read_text()))
    jobs_path = build / JOBS_FILE
    text = jobs_path.read_text() if jobs_path.exists() else '{"jobs": {}}'
    jobs, emails = load_jobs(text), load_owner_emails(text)
    sizes = {name: Size(p.cpu, p.memory, p.price_per_hour_usd) for name, p in spec.profiles.items()}
    credentials = HubCredentials(HubAPI(environ[env.HUB_API_URL], environ[env.ADMIN_API_TOKEN]))
    return Scheduler(
        ledger=Ledger.open(None, state, clock),
        policy=Policy.from_gateway_spec(spec),
        jobs=jobs,
        host=LocalDriverHost(state),
        sizes=sizes,
        environment=lambda run, token: driver_environment(environ, run, token),
        python_for=lambda name: python_for_environment(name, state),
        credentials=credentials,
        owner_emails=emails,
    )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    state = Path(os.environ[env.STATE_DIR])
    interval = float(os.environ.get(env.JOBS_INTERVAL) or 2.0)
    scheduler = build_scheduler(state, dict(os.environ))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("jobs scheduler up: %d declared job(s), a pass every %g s", len(scheduler.jobs), interval)
    heartbeat = state / "run" / HEARTBEAT
    while not stop.is_set():
        try:
            result = scheduler.tick()
            for kind in ("created", "started", "retried", "refused", "ended"):
                if getattr(result, kind):
                    log.info("runs %s: %s", kind, getattr(result, kind))
        except Exception:  # one bad pass (a locked database, a hub restarting) is retried
            log.exception("scheduler pass failed; retrying")
        write_private(heartbeat, json.dumps({"pid": os.getpid(), "at": time.time()}))
        stop.wait(interval)
    scheduler.ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

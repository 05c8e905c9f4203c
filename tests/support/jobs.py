"""A jobs scheduler on a fresh SQLite ledger driven by a manual clock, with real driver
processes on this machine (deploy.jobs.hosts.LocalDriverHost) and no hub: no tokens are
issued, so these jobs start no Dask cluster (tests/test_jobs_e2e.py runs those)."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from deploy.budgets.policy import BudgetRule, Policy
from deploy.jobs import store
from deploy.jobs.charging import Size
from deploy.jobs.hosts import LocalDriverHost
from deploy.jobs.scheduler import Scheduler
from deploy.ledger import Ledger, ManualClock
from render.job_spec import DeclaredJob, RunSpec, Schedule

REPO = Path(__file__).resolve().parents[2]
# 12:00:30 UTC on 15 November 2026: the next every-minute slot is 30 s away.
T0 = datetime(2026, 11, 15, 12, 0, 30, tzinfo=UTC).timestamp()
PRICE = 36.0  # $/h for the driver's profile: $0.01 a second


def spec(name: str, path: str, kind: str = "script", owner: str = "alice", **fields) -> RunSpec:
    return RunSpec(name=name, owner=owner, kind=kind, path=path, profile="small", environment=None, **fields)


def every_minute(run: RunSpec, missed: str = "run_once") -> DeclaredJob:
    return DeclaredJob(run, Schedule("* * * * *", "Europe/Paris", missed))


def driver_environment(run: RunSpec, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRATICULE_", "JUPYTERHUB_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def hourly(run: RunSpec, missed: str = "run_once") -> DeclaredJob:
    return DeclaredJob(run, Schedule("0 * * * *", "UTC", missed))


def make_scheduler(state: Path, clock: ManualClock, jobs: dict[str, DeclaredJob], monthly_usd: float = 10.0,
                   on_exhausted: str = "block_new", url: str | None = None) -> Scheduler:
    """A new scheduler on the database under `state` (or at `url`): a second one on the same
    database is what a restarted hub would run."""
    state.mkdir(parents=True, exist_ok=True)
    ledger = Ledger.open(url or f"sqlite:///{state / 'ledger.sqlite'}", clock=clock)
    policy = Policy(
        budgets={"team": BudgetRule("team", monthly_usd, None, (), on_exhausted)},
        payers={"alice": "team", "bob": "team"},
        min_window_s=60,
        platform_name="jobtest",
    )
    return Scheduler(
        ledger, policy, jobs, LocalDriverHost(state), {"small": Size(1, 1 << 30, PRICE)},
        driver_environment, lambda environment: sys.executable,
    )


def wait_drivers(scheduler: Scheduler, timeout: float = 120) -> None:
    """Until every started driver process has ended (the process, not a clock, decides)."""
    deadline = time.monotonic() + timeout
    import json

    for row in store.in_flight(scheduler.ledger):
        handle = json.loads(row.driver)
        while scheduler.host.poll(handle) is None:
            assert time.monotonic() < deadline, f"run {row.id}'s driver did not end"
            time.sleep(0.1)


def write(home: Path, name: str, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / name
    path.write_text(text)
    return path

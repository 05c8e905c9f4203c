"""Liveness through dask-gateway's public hooks: a worker whose process dies is found dead
by the backend's `do_check_workers`, and the usage ledger closes its interval.

Real parts: graticule's local gateway backend (`LocalProcessBackend`) with dask-gateway's
own database layer (SQLite in memory), the usage ledger on SQLite, the budgets engine
from the rendered `gateway/platform.json`, and real processes for the scheduler and the
worker (killed by PID). Only the gateway's web server and proxy are not started: this
asks the backend directly, so that nothing else (a scheduler heartbeat) can be what
noticed the death.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from dask_gateway_server.backends.db_base import DataManager, JobStatus
from sqlalchemy import create_engine, select

from deploy.budgets import Request
from deploy.gateway.budgets import GatewayBudgets
from deploy.gateway.local import LocalProcessBackend
from deploy.ledger.models import ROLE_SCHEDULER, ROLE_WORKER, UsageInterval
from render.gateway_config import render_gateway
from render.validate import validate_text

PLATFORM = """\
apiVersion: graticule/v1
name: liveness
target: local
hub:
  auth: {provider: local}
  default_profile: small
groups:
  team: {budget: team, profiles: [small], environments: [default]}
users:
  - {name: alice, groups: [team]}
budgets:
  team: {monthly_usd: 100}
profiles:
  small: {cpu: 1, memory: 1GiB, price_per_hour_usd: 3.6}
dask: {default_profile: small, max_workers: 4}
environments:
  default: {python: "3.11", packages: ["dask[distributed]==2026.8.0"]}
"""

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(SLEEPER, stdin=subprocess.DEVNULL)
        started.append(proc)
        return proc

    yield start
    for proc in started:  # stopped by PID, even on failure
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _backend(state: Path, monkeypatch) -> LocalProcessBackend:
    files = render_gateway(validate_text(PLATFORM), "local")
    platform = json.loads(files["gateway/platform.json"])
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(state))
    monkeypatch.delenv("GRATICULE_LEDGER_URL", raising=False)
    backend = LocalProcessBackend(platform=platform, state_dir=str(state / "gateway"))
    backend.db = DataManager(url="sqlite://")
    backend.budgets = GatewayBudgets.open(backend.spec, backend.state_dir)
    return backend


def _started(backend, job, proc: subprocess.Popen, is_cluster: bool) -> None:
    state = {"pid": proc.pid, "started": psutil.Process(proc.pid).create_time()}
    update = backend.db.update_cluster if is_cluster else backend.db.update_worker
    update(job, state=state, status=JobStatus.RUNNING)


def _admit(backend, cluster, process: str, role: str) -> None:
    backend.budgets.budgets.admit(Request(
        user="alice", cluster=cluster.name, process=process, profile="small", role=role,
        cores=1.0, memory_bytes=2**30, price_per_hour_usd=3.6,
    ))


def _intervals(state: Path) -> dict[str, UsageInterval]:
    engine = create_engine(f"sqlite:///{state / 'ledger.sqlite'}")
    try:
        with engine.connect() as conn:
            return {row.process: row for row in conn.execute(select(UsageInterval)).all()}
    finally:
        engine.dispose()


def test_a_dead_worker_is_found_by_do_check_workers_and_its_interval_closed(tmp_path, monkeypatch, processes):
    backend = _backend(tmp_path, monkeypatch)
    asked: list[list[str]] = []
    check_workers = backend.do_check_workers

    async def spy(workers):  # the real check, recording that it was asked
        asked.append([w.name for w in workers])
        return await check_workers(workers)

    backend.do_check_workers = spy

    async def scenario():  # dask-gateway's records need a running event loop
        cluster = backend.db.create_cluster("alice", {"profile": "small"}, {})
        _admit(backend, cluster, cluster.name, ROLE_SCHEDULER)
        _started(backend, cluster, processes(), is_cluster=True)
        survivor, victim = backend.db.create_worker(cluster), backend.db.create_worker(cluster)
        for worker in (survivor, victim):
            _admit(backend, cluster, worker.name, ROLE_WORKER)
            _started(backend, worker, processes(), is_cluster=False)

        live = await backend._budget_live()
        assert live == {(cluster.name, cluster.name), (cluster.name, survivor.name), (cluster.name, victim.name)}

        victim_proc = psutil.Process(victim.state["pid"])
        victim_proc.kill()
        victim_proc.wait(timeout=10)
        asked.clear()
        live = await backend._budget_live()

        assert asked and victim.name in asked[-1]
        assert (cluster.name, victim.name) not in live
        assert {(cluster.name, cluster.name), (cluster.name, survivor.name)} <= live
        closed = backend.budgets.budgets.meter(live).closed
        assert closed == [(cluster.name, victim.name)]
        rows = _intervals(tmp_path)
        assert rows[victim.name].ended_at is not None
        assert rows[survivor.name].ended_at is None and rows[cluster.name].ended_at is None

    try:
        asyncio.run(scenario())
    finally:
        backend.budgets.close()


def test_a_scheduler_found_dead_at_start_up_has_its_intervals_closed(tmp_path, monkeypatch, processes):
    """Gateway restart: `recover` asks `do_check_clusters` before anything is reconciled."""
    backend = _backend(tmp_path, monkeypatch)

    async def scenario():
        cluster = backend.db.create_cluster("alice", {"profile": "small"}, {})
        _admit(backend, cluster, cluster.name, ROLE_SCHEDULER)
        proc = processes()
        _started(backend, cluster, proc, is_cluster=True)
        assert _intervals(tmp_path)[cluster.name].ended_at is None
        proc.kill()
        proc.wait(timeout=10)
        backend.budgets.recover(backend.db, await backend.liveness())
        assert _intervals(tmp_path)[cluster.name].ended_at is not None

    try:
        asyncio.run(scenario())
    finally:
        backend.budgets.close()

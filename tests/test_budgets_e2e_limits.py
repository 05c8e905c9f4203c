"""Budgets end to end on the local target, under load and failure: concurrent requests
against a shared core limit, scale-up beyond the budget, and a SIGKILL of the gateway.
The site (real hub, gateway, schedulers, workers, SMTP) is tests/support/budget_site.py;
one for the module, every process stopped by PID at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from dask_gateway import GatewayClusterError

from tests.support.budget_site import CROWD, METER_INTERVAL_S, PRICE, Site, budget_site, pids_of, status, wait_for
from tests.support.ledger import peak_cores
from tests.support.procs import alive, create_time_offset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    with budget_site(tmp_path_factory.mktemp("budgets")) as running:
        yield running


def test_concurrent_requests_never_hold_more_than_max_cores(site):
    """50 cluster requests from 10 users sharing a budget of 3 cores (a scheduler is one)."""
    clients = {user: site.client(user) for user in CROWD}
    try:
        def request(n: int) -> tuple[str, str]:
            user = CROWD[n % 10]
            return user, clients[user].submit(profile="small")

        with ThreadPoolExecutor(max_workers=25) as pool:
            futures = [pool.submit(request, n) for n in range(50)]
            admitted, refusals = [], []
            for future in futures:
                try:
                    admitted.append(future.result())
                except Exception as exc:  # every failure is inspected below
                    refusals.append(exc)
        names = {name for _, name in admitted}
        with site.client("frank") as admin:  # an admin lists everyone's clusters
            held_by_backend = [c for c in admin.list_clusters() if c.name in names]
        assert all(isinstance(exc, ValueError) and "budget 'shared' refused" in str(exc) for exc in refusals), refusals
        assert 1 <= len(admitted) <= 3 and len(refusals) == 50 - len(admitted)
        assert len(held_by_backend) == len(admitted) <= 3
        rows = site.intervals(budget="shared")
        assert len(rows) == len(admitted) and peak_cores(rows) <= 3
        for user, name in admitted:
            clients[user].stop_cluster(name)
        wait_for(lambda: all(r.ended_at for r in site.intervals(budget="shared")), 60, "crowd's clusters stopped")
    finally:
        for client in clients.values():
            client.close()


def test_scale_up_beyond_the_budget_is_refused_with_the_message(site):
    with site.client("user0") as gateway:
        name = gateway.submit(profile="small")
        try:
            wait_for(lambda: status(gateway, name) == "RUNNING", 90, "user0's cluster running")
            gateway.scale_cluster(name, 2)  # 1 + 2 cores: within max_cores 3
            wait_for(lambda: len(site.intervals(cluster=name, role="worker")) == 2, 90, "two workers admitted")
            with pytest.raises(GatewayClusterError) as refused:
                gateway.scale_cluster(name, 4)
            message = str(refused.value)
            assert "budget 'shared' refused this request" in message and "over max_cores 3" in message
            assert "3 of 3 cores in use" in message and "resets" in message
            refused_at = time.time()
            wait_for(lambda: site.metered_after(refused_at, name), 60, "a metering pass after the refusal")
            assert len(site.intervals(cluster=name, role="worker")) == 2
        finally:
            gateway.stop_cluster(name)


def test_sigkill_of_the_gateway_loses_and_doubles_nothing(site):
    """Kill -9 the gateway while a cluster runs; its worker dies while nobody watches;
    restart. The dead worker is charged to its last heartbeat, the scheduler through the
    downtime, nothing twice, and `platform usage` matches the processes' real lifetimes."""
    lifetimes: dict[int, list[float]] = {}  # pid -> [start, end], measured from outside
    offset = create_time_offset()
    watching = threading.Event()

    def watch(name: str) -> dict[str, int]:
        pids = pids_of(site, name)
        for pid in pids.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                lifetimes.setdefault(pid, [psutil.Process(pid).create_time() - offset, 0.0])
        now = time.time()
        for pid, span in lifetimes.items():
            if span[1] == 0.0 and not alive(pid):
                span[1] = now
        return pids

    def watcher(name: str) -> None:
        while not watching.is_set():
            watch(name)
            time.sleep(0.05)

    with site.client("frank") as gateway:
        name = gateway.submit(profile="small", workers=1)
        thread = threading.Thread(target=watcher, args=(name,), daemon=True)
        thread.start()
        try:
            wait_for(lambda: len(pids_of(site, name)) == 2, 90, "scheduler and worker processes")
            watched_from = time.time()
            wait_for(lambda: site.metered_after(watched_from + 2 * METER_INTERVAL_S, name), 60, "a few heartbeats")
            os.kill(site.gateway.pid, signal.SIGKILL)
            site.gateway.wait(timeout=10)
            killed_at = time.time()
            worker_pid = pids_of(site, name)["worker"]
            psutil.Process(worker_pid).kill()  # dies while nobody meters it
            worker_died = time.time()
            time.sleep(4)  # downtime: the scheduler runs on, unwatched
            site.start_gateway()
            first_worker = site.intervals(cluster=name, role="worker")[0].process
            wait_for(lambda: site.intervals(cluster=name, process=first_worker)[0].ended_at, 30, "dead worker closed")
            closed = site.intervals(cluster=name, process=first_worker)
            assert len(closed) == 1  # not doubled
            assert killed_at - 2 * METER_INTERVAL_S - 1 <= closed[0].ended_at <= worker_died
            schedulers = site.intervals(cluster=name, role="scheduler")
            assert len(schedulers) == 1 and schedulers[0].ended_at is None  # alive: still open, once
            time.sleep(3 * METER_INTERVAL_S)  # the gateway may start a replacement worker
            gateway.stop_cluster(name)
            wait_for(lambda: all(not alive(pid) for pid in list(lifetimes)), 60, "processes gone")
            wait_for(lambda: all(r.ended_at for r in site.intervals(cluster=name)), 60, "all intervals closed")
        finally:
            watching.set()
            thread.join(timeout=10)
        watch(name)
    rows = site.intervals(cluster=name)
    assert len(rows) == len(lifetimes)  # one interval per process that ever ran, none twice
    real = sum(end - start for start, end in lifetimes.values()) * PRICE / 3600
    total = site.usage("--user", "frank")["budgets"][0]["spent_usd"]
    # The worker that died unwatched is charged to its last heartbeat, so the ledger is
    # short by exactly the time it ran after that (bounded above). Everything else must
    # match the processes' real lifetimes, give or take a second of start/stop latency.
    unwatched = (worker_died - closed[0].ended_at) * PRICE / 3600
    assert abs(total - (real - unwatched)) <= PRICE / 3600 * 1.5, (total, real, unwatched)

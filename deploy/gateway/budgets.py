"""Budgets at a dask-gateway backend's seams (used by `deploy.gateway.base`).

The budget engine itself (`deploy.budgets`) knows nothing of dask-gateway; this module
knows dask-gateway's Cluster/Worker objects and turns refusals into PublicException,
so the client sees the BudgetExceeded message. Blocking ledger calls run in threads.

- a new cluster reserves its scheduler's interval *before* the cluster record exists
  (under a temporary key, renamed once dask-gateway has named the cluster), and checks
  that the initial workers are affordable: concurrent requests cannot overshoot;
- a scale-up request is checked before it reaches the scheduler (the client sees why);
- the scheduler's wanted worker count is capped to what the budget can hold now, and
  each worker is admitted (atomically) right before its process starts;
- every stop closes the process's interval; the metering loop runs in the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from pathlib import Path

from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.db_base import JobStatus

from deploy.budgets.admission import BudgetExceeded, Request
from deploy.budgets.guard import Budgets
from deploy.budgets.policy import Policy
from deploy.ledger import Ledger, ProcessKey
from deploy.ledger.models import ROLE_SCHEDULER, ROLE_WORKER
from deploy.runtime import env
from render.gateway_spec import GatewaySpec

log = logging.getLogger("graticule.budgets")

STATE_DIR_ENV = env.STATE_DIR
STOP_REASON_OPTION = "stop_reason"  # shown in the cluster's options once budgets stop it


class GatewayBudgets:
    def __init__(self, budgets: Budgets, spec: GatewaySpec, whole_machines: bool = False) -> None:
        self.budgets = budgets
        self.spec = spec
        # VM backends: every scheduler and worker is a machine of its profile, and holds all of it.
        self.whole_machines = whole_machines
        self._pending: set[ProcessKey] = set()  # reservations not yet bound to a cluster
        self.stop_reasons: dict[str, str] = {}

    @classmethod
    def open(
        cls, spec: GatewaySpec, backend_state_dir: str, backend_log: logging.Logger | None = None,
        whole_machines: bool = False,
    ) -> GatewayBudgets:
        """The ledger from GRATICULE_LEDGER_URL, else SQLite in the platform's state dir."""
        if backend_log is not None and not log.handlers:  # budget messages in the gateway's log
            for handler in backend_log.handlers:
                log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = False
        state = os.environ.get(STATE_DIR_ENV) or str(Path(backend_state_dir).parent)
        ledger = Ledger.open(state_dir=Path(state))
        return cls(Budgets(ledger, Policy.from_gateway_spec(spec)), spec, whole_machines)

    # -- prices and sizes ---------------------------------------------------------------

    def _price(self, profile: str | None) -> float:
        size = self.spec.profiles.get(profile or "")
        return float(size.price_per_hour_usd or 0.0) if size else 0.0

    def _request(self, user: str, cluster: str, process: str, options: dict, config: dict, role: str) -> Request:
        prefix = "scheduler" if role == ROLE_SCHEDULER else "worker"
        cores, memory = float(config.get(f"{prefix}_cores") or 1), int(config.get(f"{prefix}_memory") or 0)
        size = self.spec.profiles.get(options.get("profile") or "")
        if self.whole_machines and size is not None:
            cores, memory = float(size.cpu), int(size.memory)
        return Request(
            user=user,
            cluster=cluster,
            process=process,
            profile=options.get("profile") or "",
            role=role,
            cores=cores,
            memory_bytes=memory,
            price_per_hour_usd=self._price(options.get("profile")),
        )

    # -- admission ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def reserve_cluster(self, user: str, options: dict, config: dict):
        """Admit a new cluster's scheduler; yields `bind(cluster_name)` for once it exists."""
        key = (f"pending-{uuid.uuid4().hex}", "scheduler")
        self._pending.add(key)
        try:
            request = self._request(user, *key, options, config, ROLE_SCHEDULER)
            workers = int(options.get("workers") or 0)
            try:
                interval = await asyncio.to_thread(self.budgets.admit, request)
                if workers:
                    worker = self._request(user, *key, options, config, ROLE_WORKER)
                    await asyncio.to_thread(
                        self.budgets.check_scale, user, worker.cores, worker.price_per_hour_usd, workers
                    )
            except BudgetExceeded as exc:
                await asyncio.to_thread(self.budgets.stopped, *key, "refused")
                raise PublicException(str(exc)) from None
            named: list[str] = []
            try:
                yield named.append  # bind(cluster_name), called once the cluster record exists
            finally:
                if named:
                    await asyncio.to_thread(self.budgets.ledger.rebind, interval, named[0], named[0])
                else:  # the cluster was never created: nothing ran
                    await asyncio.to_thread(self.budgets.stopped, *key, "not started")
        finally:
            self._pending.discard(key)

    async def check_scale(self, cluster, count: int) -> None:
        """Before forwarding a scale request: refuse, with the budget's message, a scale-up
        the budget cannot hold now."""
        active = len(cluster.active_workers()) if hasattr(cluster, "active_workers") else 0
        more = count - max(active, getattr(cluster, "count", 0))
        if more <= 0:
            return
        worker = self._request(cluster.username, cluster.name, "-", cluster.options, cluster.config, ROLE_WORKER)
        try:
            await asyncio.to_thread(
                self.budgets.check_scale, cluster.username, worker.cores, worker.price_per_hour_usd, more
            )
        except BudgetExceeded as exc:
            raise PublicException(str(exc)) from None

    async def affordable_workers(self, cluster, requested: int) -> int:
        """The largest count <= requested whose extra workers the budget can hold now."""
        current = len(cluster.active_workers())
        if requested <= current:
            return requested
        worker = self._request(cluster.username, cluster.name, "-", cluster.options, cluster.config, ROLE_WORKER)
        try:
            room = await asyncio.to_thread(
                self.budgets.headroom, cluster.username, worker.cores, worker.price_per_hour_usd
            )
        except BudgetExceeded:
            room = 0
        if room < requested - current:
            log.info("cluster %s: scale-up to %d capped at %d by its budget", cluster.name, requested, current + room)
        return current + min(room, requested - current)

    async def admit_worker(self, worker) -> bool:
        """Atomically admit a worker right before its process starts; False if refused."""
        cluster = worker.cluster
        request = self._request(
            cluster.username, cluster.name, worker.name, cluster.options, cluster.config, ROLE_WORKER
        )
        try:
            await asyncio.to_thread(self.budgets.admit, request)
            return True
        except BudgetExceeded as exc:
            log.info("worker %s of cluster %s not started: %s", worker.name, cluster.name, exc)
            return False

    # -- stops ----------------------------------------------------------------------------

    async def process_stopped(self, cluster, worker=None) -> None:
        reason = self.stop_reasons.get(cluster.name, "stopped")
        if worker is None:  # the scheduler: anything of the cluster still open ends with it
            await asyncio.to_thread(self.budgets.cluster_stopped, cluster.name, reason)
            self.stop_reasons.pop(cluster.name, None)
        else:
            await asyncio.to_thread(self.budgets.stopped, cluster.name, worker.name, reason)

    # -- metering -------------------------------------------------------------------------

    def live(self, db, is_alive=None, strict: bool = False) -> set[ProcessKey]:
        """Processes the backend holds: not stopped, and (once started) still alive.

        A process the backend is stopping counts as live: its stop is recorded at the
        moment it is done. `strict` (at start-up) asks the process itself instead.
        """

        def holds(job) -> bool:
            if job.status < JobStatus.SUBMITTED or is_alive is None:
                return True
            if not strict and job.target >= JobStatus.STOPPED:
                return True
            return bool(is_alive(job))

        keys = set(self._pending)
        # not db.active_clusters(): that leaves out clusters being stopped (target STOPPED)
        for cluster in list(db.name_to_cluster.values()):
            if cluster.status >= JobStatus.STOPPED:
                continue
            if holds(cluster):
                keys.add((cluster.name, cluster.name))
            for worker in cluster.workers.values():
                if worker.status < JobStatus.STOPPED and holds(worker):
                    keys.add((cluster.name, worker.name))
        return keys

    def recover(self, db, is_alive=None, also_live: set[ProcessKey] = frozenset()) -> None:
        """At start-up, before anything is reconciled: close what died while we were down
        (`also_live`: what runs outside the gateway's clusters, which it must leave open)."""
        ledger = self.budgets.ledger
        seen_at = ledger.clock()
        closed = ledger.sweep(self.live(db, is_alive, strict=True) | set(also_live), seen_at, seen_at)
        if closed:
            log.warning("closed %d intervals of processes gone while the gateway was down", len(closed))

    def close(self) -> None:
        self.budgets.ledger.close()


def stop_reason_options(options: dict, reason: str) -> dict:
    return {**(options or {}), STOP_REASON_OPTION: reason}


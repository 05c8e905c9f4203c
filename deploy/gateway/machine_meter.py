"""Budgets and restarts for backends whose schedulers and workers are machines (VMs).

`MachineMetering` sits between `GraticuleBackend` and the VM backend (`deploy.gateway.vm`),
which gives it `self.machines` (the machines layer) and keeps each job's state as
`{"machine_id", ...}`. It adds:

- usage from instances: each metering pass describes every job's machine in one request;
  an interval that does not know its instance yet is given it (`deploy.ledger.machines`:
  started at the instance's launch, charged at the spot price when the instance is spot,
  else on-demand), and the interval of an instance that went is closed at the instance's
  own end time. Admission still opens the interval before the launch, so an instance
  that is still starting counts against `max_cores` and the money left. An instance that
  was stopped (or suspended) and runs again is paid for each run, not for the pause
  (`split_at_restart`; GCE dates both).
- `on_exhausted: stop`: besides stopping the budget's clusters, every live Dask instance
  tagged with the budget is terminated in the same metering pass, whether the gateway
  knows it or not.
- notebook servers' machines (the hub's spawner admits, attaches and closes their intervals:
  `deploy.budgets.servers`): this pass is the one that judges every open interval of the
  ledger, so it keeps a server's interval open while its instance lives (one more
  DescribeInstances, of the servers' instances only), closes it at the instance's end
  when the instance went by itself, and stops the servers of a budget spent with
  `on_exhausted: stop` through the hub's REST API (the gateway's service token, scope
  `delete:servers`): the hub stops them as it stops any server, so it knows they stopped.
- adoption after a restart (or a SIGKILL): dask-gateway reloads its jobs from its
  database and re-runs the launches it had not recorded: a scheduler's is found again by
  its client token, a batch of workers' by its tags (the worker machines listed before
  this gateway launches anything and recorded nowhere are handed to the workers started
  again), so nothing is launched twice; the ledger's open intervals go on (`recover`);
  then the platform's Dask instances the database does not account for are terminated
  (`deploy.gateway.adoption`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import quote

import aiohttp
from dask_gateway_server.backends.db_base import JobStatus
from traitlets import Float

from deploy.budgets.prices import machine_price
from deploy.budgets.servers import close_ended, live_servers, open_servers, server_of
from deploy.cloud.machines import TAG_BUDGET, TAG_PLATFORM, TAG_ROLE, Machine
from deploy.cloud.reaper import DEFAULT_GRACE_SECONDS
from deploy.gateway.adoption import DASK_ROLES, UnrecordedLaunches, in_use, orphans
from deploy.gateway.base import GraticuleBackend
from deploy.gateway.secret_shards import machine_state, shard_of
from deploy.ledger.machines import Attachment, Restart, attach, attached, close_machine, split_at_restart


class MachineMetering(GraticuleBackend):
    whole_machines = True  # a scheduler is a machine too: admission counts its profile's cores

    adoption_grace = Float(
        DEFAULT_GRACE_SECONDS,
        help="At start-up, an instance of a live cluster that the gateway's database does not know is "
             "terminated once it is older than this (seconds): younger ones may be launches in flight",
        config=True,
    )

    # -- jobs and their machines --------------------------------------------------------------

    def _metered_jobs(self) -> list[tuple[object, str, str]]:
        """(job, ledger process name, machine id) of every job not stopped that has a machine."""
        jobs = []
        for cluster in list(self.db.name_to_cluster.values()):
            if cluster.status >= JobStatus.STOPPED:
                continue
            for job, process in ((cluster, cluster.name), *((w, w.name) for w in cluster.workers.values())):
                machine_id = (job.state or {}).get("machine_id")
                if job.status < JobStatus.STOPPED and machine_id:
                    jobs.append((job, process, machine_id))
        return jobs

    def _cluster_of(self, job):
        return getattr(job, "cluster", job)

    async def liveness(self) -> Callable[[object], bool]:
        """One DescribeInstances for every machine; meters them on the way (see module doc)."""
        jobs = self._metered_jobs()
        found: dict[str, Machine] = await asyncio.to_thread(self.machines.describe, [m for _, _, m in jobs])
        await asyncio.to_thread(self._meter_machines, jobs, found)
        dead = {
            id(job) for job, _, machine_id in jobs
            if job.status >= JobStatus.SUBMITTED and not (machine_id in found and found[machine_id].alive)
        }
        # A started job without a machine id has nothing alive behind it.
        for cluster in self.db.name_to_cluster.values():
            for job in (cluster, *cluster.workers.values()):
                if JobStatus.SUBMITTED <= job.status < JobStatus.STOPPED and not (job.state or {}).get("machine_id"):
                    dead.add(id(job))
        return lambda job: id(job) not in dead

    def _meter_machines(self, jobs: Sequence[tuple[object, str, str]], found: dict[str, Machine]) -> None:
        ledger = self.budgets.budgets.ledger
        known = attached(ledger)
        attachments = []
        for job, process, machine_id in jobs:
            machine = found.get(machine_id)
            cluster = self._cluster_of(job)
            if machine is None or known.get((cluster.name, process)) == machine_id:
                continue
            profile = (cluster.options or {}).get("profile") or self.spec.dask.default_profile
            launched = machine.launched_at.timestamp() if machine.launched_at else None
            attachments.append(Attachment(cluster.name, process, machine_id, launched,
                                          machine_price(self.spec, profile, machine.spot)))
        if attachments:
            attach(ledger, attachments)
        _split_restarts(ledger, found.values())
        for _, _, machine_id in jobs:
            machine = found.get(machine_id)
            if machine is not None and not machine.alive and machine.ended_at is not None:
                close_machine(ledger, machine_id, machine.ended_at.timestamp(), f"instance {machine.state}")

    # -- on_exhausted: stop ------------------------------------------------------------------

    async def _budget_stop(self, cluster_name: str, reason: str) -> None:
        if (server := server_of(cluster_name)) is not None:
            await self._stop_server(*server, reason)
            return
        cluster = self.db.get_cluster(cluster_name)
        await super()._budget_stop(cluster_name, reason)
        grants = self.spec.users.get(cluster.username) if cluster is not None else None
        if grants is not None and grants.budget:
            await self._budget_stop_instances(grants.budget, reason)

    async def _budget_stop_instances(self, budget: str, reason: str) -> None:
        """Terminate every live Dask instance the budget pays for, known to the gateway or not."""
        listed = await asyncio.to_thread(self.machines.list, {TAG_PLATFORM: self.spec.name, TAG_BUDGET: budget})
        doomed = [m.id for m in listed if m.alive and m.tags.get(TAG_ROLE) in DASK_ROLES]
        if doomed:
            self.log.warning("Terminating %d instances of budget %s: %s", len(doomed), budget, reason)
            await asyncio.to_thread(self.machines.terminate, doomed)

    # -- notebook servers (deploy.budgets.servers) ----------------------------------------------

    async def live_outside_clusters(self) -> set[tuple[str, str]]:
        """The open intervals of notebook servers whose instance lives (or that still start);
        those whose instance went are closed at its end. A failed look fails the whole pass
        (retried next interval) rather than closing what may still run."""
        ledger = self.budgets.budgets.ledger
        now = ledger.clock()
        servers = await asyncio.to_thread(open_servers, ledger)
        ids = [server.machine_id for server in servers if server.machine_id]
        found: dict[str, Machine] = await asyncio.to_thread(self.machines.describe, ids) if ids else {}
        await asyncio.to_thread(_split_restarts, ledger, list(found.values()))
        ended = [(m.id, m.ended_at.timestamp(), m.state) for m in found.values() if not m.alive and m.ended_at]
        if ended:
            await asyncio.to_thread(close_ended, ledger, ended)
        return live_servers(servers, {m.id for m in found.values() if m.alive}, now)

    async def _stop_server(self, user: str, name: str, reason: str) -> None:
        """Ask the hub to stop a server (its spawner terminates the instance and closes the
        interval); a refusal is logged and asked again at the next pass."""
        path = f"/users/{quote(user)}/server" + (f"s/{quote(name)}" if name else "")
        self.log.warning("Stopping notebook server %s%s: %s", user, f"/{name}" if name else "", reason)
        headers = {"Authorization": f"token {self.hub_service_token}"}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session, \
                    session.delete(self.hub_api_url.rstrip("/") + path, headers=headers) as answer:
                if answer.status not in (202, 204):
                    self.log.warning("The hub did not stop %s's server: HTTP %d %s", user, answer.status,
                                     (await answer.text())[:300])
        except (aiohttp.ClientError, TimeoutError) as error:
            self.log.warning("The hub did not stop %s's server: %s", user, error)

    # -- adoption -------------------------------------------------------------------------------

    async def adopt(self, listed: list[Machine] | None = None) -> list[str]:
        """After a (re)start: terminate the platform's Dask instances the database does not
        account for; returns their ids. Listed first, the database read after: anything
        listed was launched before what the database says was read."""
        if listed is None:
            listed = await asyncio.to_thread(self.machines.list, {TAG_PLATFORM: self.spec.name})
        active, known = in_use(self.db)
        unrecorded = getattr(self, "_unrecorded", None)
        held = unrecorded.held(self.db) if unrecorded is not None else set()
        doomed = orphans(listed, active, known | held, self.adoption_grace)
        if doomed:
            self.log.warning("Terminating %d instances the gateway does not know: %s", len(doomed), " ".join(doomed))
            await asyncio.to_thread(self.machines.terminate, doomed)
        adopted = [c.name for c in self.db.name_to_cluster.values() if c.status < JobStatus.STOPPED]
        if adopted:
            self.log.info("Adopted %d clusters: %s", len(adopted), " ".join(sorted(adopted)))
        return doomed

    async def reconcile_worker(self, worker):
        unrecorded = getattr(self, "_unrecorded", None)
        if worker.status == JobStatus.CREATED and worker.target == JobStatus.RUNNING and unrecorded is not None \
                and (machine := unrecorded.claim(self.db, worker.cluster.name)) is not None:
            await self._adopt_launch(worker, machine)
            return
        await super().reconcile_worker(worker)

    async def _adopt_launch(self, worker, machine: Machine) -> None:
        """Record `machine`, launched before a restart and never recorded, as `worker`'s."""
        cluster = worker.cluster
        if not await self.budgets.admit_worker(worker):  # normally its interval is still open
            await asyncio.to_thread(self.machines.terminate, [machine.id])
            await super().reconcile_worker(worker)  # refused there too: stopped with the reason
            return
        shard = shard_of(machine.tags)  # the secret its user data reads
        self.db.update_worker(worker, state=machine_state(machine.id, machine.private_ip, shard),
                              status=JobStatus.SUBMITTED)
        self.record("worker-started", cluster, worker)
        if getattr(self, "secrets", None) is not None:  # its cluster's secret, as after a launch
            await self._allow(cluster, [machine.id], shard)
        self.log.info("Worker %s of cluster %s adopted %s, launched before the restart",
                      worker.name, cluster.name, machine.id)

    async def setup(self, app):
        # Listed before this gateway launches anything: what is not recorded was the previous one's.
        try:
            listed = await asyncio.to_thread(self.machines.list, {TAG_PLATFORM: self.spec.name})
        except Exception:  # the reaper unit looks again later; the gateway must still start
            self.log.warning("Could not list the platform's instances", exc_info=True)
            listed = None
        self._unrecorded = UnrecordedLaunches(listed or [])
        await super().setup(app)  # reloads the jobs, re-queues them, recovers the ledger
        if listed is not None:
            try:
                await self.adopt(listed)
            except Exception:  # the reaper unit ends them later; the gateway must still start
                self.log.warning("Could not terminate the instances the gateway does not know", exc_info=True)


def _split_restarts(ledger, machines: Iterable[Machine]) -> None:
    """Machines that run again after a pause are paid for their runs (deploy.ledger.machines)."""
    restarts = [Restart(m.id, m.paused_at.timestamp(), m.resumed_at.timestamp())
                for m in machines if m.alive and m.paused_at and m.resumed_at]
    if restarts:
        split_at_restart(ledger, restarts)

"""What every graticule gateway backend shares, whatever runs the processes.

platform.yaml's rules applied on the server: who may start what (`admit_cluster`,
`admit_workers`: the budget engine hooks in there), who sees what (owners see their own
clusters, admins list all), the cluster lifetime cap, the initial worker count, the
scheduler/worker command and its Python (`python_for`: environments hook in there), and
one place that hears about every scheduler and worker start and stop (`record`: the
usage ledger hooks in there). Backends for a target subclass this and implement the
`do_*` methods of dask-gateway's `DBBackendBase` (start, stop and check processes or
machines).

Only public hooks of `DBBackendBase` are used: the budgets and ledger hooks run around
`reconcile_cluster`/`reconcile_worker`, seeing each state change they make, and whether
a scheduler or worker is still alive is always asked through `do_check_clusters`/
`do_check_workers`, so a backend whose machines can die (VMs) has their usage closed in
the ledger like a local process's.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet
from dask_gateway_server import models
from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.db_base import Cluster, DBBackendBase, JobStatus, Worker
from dask_gateway_server.utils import timestamp
from traitlets import Dict, Float, Unicode, default

from deploy.gateway.budgets import GatewayBudgets, stop_reason_options
from deploy.gateway.options import python_for
from deploy.gateway.postgres import adapt_tables
from deploy.gateway.tls import use_ec_keys
from render.gateway_spec import GatewaySpec

adapt_tables()  # before the backend creates dask-gateway's tables: valid on PostgreSQL too


class ListedCluster(models.Cluster):
    """Another user's cluster as an admin lists it: no credentials to connect with."""

    def to_dict(self, full: bool = True) -> dict:
        return super().to_dict(full=False)


class GraticuleBackend(DBBackendBase):
    whole_machines = False  # budgets: a scheduler/worker holds its profile's whole machine (VM backends)

    platform = Dict(help="The rendered gateway/platform.json", config=True)

    state_dir = Unicode(
        help="Directory (0700) for the gateway's database, keys and cluster directories",
        config=True,
    )

    max_lifetime = Float(0, help="Seconds after which any cluster is stopped (0: no limit)", config=True)

    hub_api_url = Unicode("", help="The hub's API URL: dashboards check their visitors there", config=True)
    hub_service_token = Unicode("", help="The gateway's hub service token (its OAuth client secret)", config=True)

    @default("db_encrypt_keys")
    def _db_encrypt_keys_default(self) -> list[bytes]:
        from_env = os.environ.get("DASK_GATEWAY_ENCRYPT_KEYS", "")
        keys = [key.strip().encode() for key in from_env.split(";") if key.strip()]
        if keys or self.db_url in ("sqlite://", "sqlite:///:memory:"):
            return keys
        return [self._encrypt_key_file()]

    def _encrypt_key_file(self) -> bytes:
        """The database key: generated on first start, 0600, reused after."""
        path = Path(self.state_dir) / "db-encrypt.key"
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        key = Fernet.generate_key()
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key

    @property
    def spec(self) -> GatewaySpec:
        """The rendered platform.json, parsed once."""
        if getattr(self, "_gateway_spec", None) is None:
            self._gateway_spec = GatewaySpec.from_json(self.platform)
        return self._gateway_spec

    # -- policy -------------------------------------------------------------------------

    def is_admin(self, username: str) -> bool:
        grants = self.spec.grants_of(username)
        return bool(grants and grants.admin)

    async def admit_cluster(self, user: models.User, options: dict, config) -> None:
        """Refuse a new cluster by raising PublicException (the user sees the message)."""
        grants = self.spec.grants_of(user.name)
        if grants is None:
            raise PublicException(f"user {user.name!r} is not declared in platform.yaml and may not start clusters")
        if not grants.profiles:
            raise PublicException(
                f"user {user.name!r} may not start clusters: none of their groups in "
                "platform.yaml grants a hardware profile"
            )

    async def admit_workers(self, cluster: Cluster, requested: int) -> int:
        """How many of `requested` workers `cluster` may have (every scale-up asks here)."""
        allowed = min(requested, self.spec.dask.max_workers)
        return await self.budgets.affordable_workers(cluster, allowed)  # budgets: what it can pay for now

    def record(self, event: str, cluster: Cluster, worker: Worker | None = None) -> None:
        """Every scheduler/worker start and stop passes here exactly once."""
        self.log.info(
            "usage %s cluster=%s user=%s profile=%s worker=%s",
            event,
            cluster.name,
            cluster.username,
            (cluster.options or {}).get("profile"),
            worker.name if worker else "-",
        )

    def python_for(self, cluster: Cluster) -> str:
        """The Python that runs the cluster's scheduler and workers: its environment's."""
        return python_for(cluster.username, cluster.options or {})

    def get_scheduler_command(self, cluster: Cluster) -> list[str]:
        return self._with_python(cluster, super().get_scheduler_command(cluster))

    def get_worker_command(self, cluster: Cluster, worker_name, scheduler_address=None):
        # Initial workers start before the scheduler has reported its address.
        address = scheduler_address or cluster.scheduler_address or self.known_scheduler_address(cluster)
        command = super().get_worker_command(cluster, worker_name, address)
        return self._with_python(cluster, command)

    def known_scheduler_address(self, cluster: Cluster) -> str:
        """The scheduler's address before it reports it, when the backend chose it ("" if
        not): then a cluster's initial workers start together with its scheduler."""
        return ""

    def _with_python(self, cluster: Cluster, command: list[str]) -> list[str]:
        # `dask-scheduler` / `dask-worker` -> `<python> -m distributed.cli.dask_<x>`: the
        # cluster's environment decides the interpreter, not the gateway's PATH.
        module = {"dask-scheduler": "dask_scheduler", "dask-worker": "dask_worker"}
        if command and command[0] in module:
            entry = f"distributed.cli.{module[command[0]]}"
            return [self.python_for(cluster), "-m", entry, *command[1:]]
        return command

    # -- dask-gateway hooks ---------------------------------------------------------------

    async def start_cluster(self, user, cluster_options):
        options, config = await self.process_cluster_options(user, cluster_options)
        await self.admit_cluster(user, options, config)
        # budgets: the scheduler is admitted and recorded atomically before the cluster exists
        async with self.budgets.reserve_cluster(user.name, options, config.to_dict()) as bind:
            cluster = self.db.create_cluster(user.name, options, config.to_dict())
            bind(cluster.name)
        self.log.info("Created cluster %s for user %s", cluster.name, user.name)
        self.queue.put(cluster)
        return cluster.name

    async def list_clusters(self, username=None, statuses=None):
        if username is None or not self.is_admin(username):
            return await super().list_clusters(username=username, statuses=statuses)
        listed = []
        for cluster in self.db.list_clusters(username=None, statuses=statuses):
            model = cluster.to_model()
            if cluster.username != username:
                model.__class__ = ListedCluster
            listed.append(model)
        return listed

    async def on_cluster_heartbeat(self, cluster_name, msg):
        cluster = self.db.get_cluster(cluster_name)
        held = self._initial_counts.get(cluster_name)
        if held is not None and msg.get("count", 0) < held:
            # The scheduler does not know of the initial workers until we tell it, once
            # the cluster runs (_on_cluster_running); until then its count of 0 must not
            # stop them.
            msg = {**msg, "count": held}
        if cluster is not None and msg.get("count", 0) > cluster.count:
            msg = {**msg, "count": await self.admit_workers(cluster, msg["count"])}
        await super().on_cluster_heartbeat(cluster_name, msg)

    async def reconcile_cluster(self, cluster):
        before = cluster.status
        await super().reconcile_cluster(cluster)
        if before == JobStatus.CREATED and cluster.status == JobStatus.SUBMITTED:
            if cluster.target == JobStatus.RUNNING:  # the scheduler started
                self.record("scheduler-started", cluster)
                await self._start_initial_workers(cluster)
        elif before == JobStatus.SUBMITTED and cluster.status == JobStatus.RUNNING:
            await self._on_cluster_running(cluster)
        elif before < JobStatus.STOPPED <= cluster.status:
            self._initial_counts.pop(cluster.name, None)
            await self.budgets.process_stopped(cluster)  # budgets: close its intervals, started or not
            if before > JobStatus.CREATED:
                self.record("scheduler-stopped", cluster)

    async def reconcile_worker(self, worker):
        before = worker.status
        starting = before == JobStatus.CREATED and worker.target == JobStatus.RUNNING
        # budgets: admit (and record) the worker right before its process starts
        if starting and not await self.budgets.admit_worker(worker):
            self.db.update_worker(worker, target=JobStatus.STOPPED)
            self.db.update_cluster(worker.cluster, count=max(0, worker.cluster.count - 1))
            self.queue.put(worker)
            return
        await super().reconcile_worker(worker)
        if before == JobStatus.CREATED and worker.status == JobStatus.SUBMITTED:
            if worker.target == JobStatus.RUNNING:
                self.record("worker-started", worker.cluster, worker)
        elif before < JobStatus.STOPPED <= worker.status:
            await self.budgets.process_stopped(worker.cluster, worker)  # budgets: close its interval
            if before > JobStatus.CREATED:
                self.record("worker-stopped", worker.cluster, worker)

    async def _start_initial_workers(self, cluster: Cluster) -> None:
        """Start the `workers` option's workers now, alongside the scheduler (they wait
        for it to listen), rather than after its first heartbeat: a cluster is ready
        sooner by the scheduler's start-up time."""
        wanted = (cluster.options or {}).get("workers") or 0
        if not wanted or not self.known_scheduler_address(cluster):
            return
        count = await self.admit_workers(cluster, wanted)
        self.db.update_cluster(cluster, count=count)
        self._initial_counts[cluster.name] = count
        for _ in range(count):
            self.queue.put(self.db.create_worker(cluster))

    async def _on_cluster_running(self, cluster: Cluster) -> None:
        workers = self._initial_counts.get(cluster.name, (cluster.options or {}).get("workers") or 0)
        if workers:
            await self.forward_message_to_scheduler(cluster.to_model(), {"op": "scale", "count": workers})
        self._initial_counts.pop(cluster.name, None)  # the scheduler counts them from now on

    # -- lifetime ---------------------------------------------------------------------------

    async def setup(self, app):
        self._initial_counts: dict[str, int] = {}  # cluster -> initial workers, until running
        use_ec_keys()  # cluster TLS keys in a millisecond, not up to a second of RSA
        if self.state_dir:
            Path(self.state_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.budgets = GatewayBudgets.open(  # budgets: the usage ledger
            self.spec, self.state_dir, self.log, whole_machines=self.whole_machines
        )
        await super().setup(app)
        # budgets: close the intervals of processes that died while the gateway was down,
        # before anything else is reconciled (the local backend's checks never suspend).
        self.budgets.recover(self.db, await self.liveness(), await self.live_outside_clusters())
        self.task_pool.spawn(self.budgets.budgets.metering_loop(self._budget_live, self._budget_stop))
        from deploy.gateway.api import add_routes

        add_routes(app, self)  # /api/graticule/v1: profiles, usage, package sync
        self._add_dashboards(app)
        if self.max_lifetime > 0:
            self.task_pool.spawn(self._lifetime_loop())

    # -- dashboards: through the gateway's web app, for their owner only (deploy.gateway.dashboards)

    def _add_dashboards(self, app) -> None:
        from deploy.gateway.dashboards import DashboardAccess

        self.dashboards = DashboardAccess(
            self,
            hub_api_url=self.hub_api_url,
            service_token=self.hub_service_token,
            service_name=self.spec.service_name,
            prefix=self.proxy.prefix,
        )
        self.dashboards.add_routes(app)
        # Only the schedulers' SNI routes in the proxy: a dashboard route there would bypass
        # the owner check, so `<prefix>/clusters/<name>/` must fall through to the web app.
        add_route = self.proxy.add_route

        async def scheduler_routes_only(kind=None, sni=None, path=None, target=None):
            if kind == "PATH" and (path or "").startswith("/clusters/"):
                return
            await add_route(kind=kind, sni=sni, path=path, target=target)

        self.proxy.add_route = scheduler_routes_only

    # -- budgets (deploy.gateway.budgets) ----------------------------------------------------

    async def forward_message_to_scheduler(self, cluster, msg):
        if msg.get("op") == "scale" and (held := self.db.get_cluster(cluster.name)) is not None:
            await self.budgets.check_scale(held, msg["count"])  # the client sees a refusal's reason
        await super().forward_message_to_scheduler(cluster, msg)

    async def liveness(self) -> Callable[[object], bool]:
        """Whether each started scheduler and worker is alive, asked of the backend
        through `do_check_clusters`/`do_check_workers` (processes, or machines)."""
        clusters = [c for c in self.db.name_to_cluster.values() if c.status < JobStatus.STOPPED]
        workers = [w for c in clusters for w in c.workers.values() if w.status < JobStatus.STOPPED]
        dead: set[int] = set()
        for jobs, check in ((clusters, self.do_check_clusters), (workers, self.do_check_workers)):
            started = [job for job in jobs if job.status >= JobStatus.SUBMITTED]
            if started:
                dead |= {id(job) for job, ok in zip(started, await check(started), strict=True) if not ok}
        return lambda job: id(job) not in dead

    async def live_outside_clusters(self) -> set[tuple[str, str]]:
        """Open intervals of the ledger that are no cluster's but still run, so that no sweep
        closes them (VM backends: notebook servers' machines, deploy.gateway.machine_meter)."""
        return set()

    async def _budget_live(self) -> set[tuple[str, str]]:
        return self.budgets.live(self.db, await self.liveness()) | await self.live_outside_clusters()

    async def _budget_stop(self, cluster_name: str, reason: str) -> None:
        """Stop a cluster whose budget is exhausted (`on_exhausted: stop`), saying why."""
        cluster = self.db.get_cluster(cluster_name)
        if cluster is None or cluster.target > JobStatus.RUNNING:
            return
        self.budgets.stop_reasons[cluster_name] = reason
        self.db.update_cluster(cluster, options=stop_reason_options(cluster.options, reason))
        self.log.warning("Stopping cluster %s: %s", cluster_name, reason)
        await self.stop_cluster(cluster_name)

    async def cleanup(self):
        await super().cleanup()
        if hasattr(self, "budgets"):
            self.budgets.close()

    # -- end budgets ---------------------------------------------------------------------------

    async def _lifetime_loop(self) -> None:
        period = min(30.0, max(1.0, self.max_lifetime / 4))
        while True:
            await asyncio.sleep(period)
            cutoff = timestamp() - self.max_lifetime * 1000
            for cluster in list(self.db.active_clusters()):
                if cluster.target == JobStatus.RUNNING and cluster.start_time < cutoff:
                    self.log.info(
                        "Cluster %s reached max lifetime (%.0f s), stopping",
                        cluster.name,
                        self.max_lifetime,
                    )
                    await self.stop_cluster(cluster.name)

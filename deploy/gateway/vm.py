"""The cloud-neutral VM backend: one machine per scheduler and one per worker.

Each is launched through the machines layer (`deploy.cloud`) from its profile's rendered
template (`workers/<profile>.json`, beside the gateway's build). `do_start_*` yields
`{"machine_id", "private_ip"}` as soon as the launch call returns, never waiting for a
boot; whether a machine still runs is asked of the machines layer through
`do_check_clusters`/`do_check_workers`, so a machine that dies has its usage closed in
the ledger (see `GraticuleBackend.liveness`).

A cloud with machine secrets (`make_secrets`: AWS, GCP) keeps every credential out of user
data: the cluster's TLS certificate and key and its API token go into one secret per
cluster (in shards of `machines_per_secret` machines: `secret_shards.py`), readable only by
the cluster's machines (`allow` after each launch) and deleted when the cluster stops; the
user data (`deploy.cloud.machine_boot`) is the same for all of a shard's workers, so a
scale-up's `do_start_worker` calls are coalesced into batches (`vm_batches.py`: one launch
request per batch and shard), and each worker machine asks the gateway
which worker it is and where its scheduler listens (`vm_worker_launcher.py`,
`machines_api.py`). Initial workers therefore launch together with the scheduler.
A backend without them (the tests' fake machines) writes the credentials into user data
and launches each worker with its own command (`legacy_user_data`).

What a cloud's stack made is read from Terraform's outputs, published beside the rendered
workers (`build/outputs.json`): the artifacts bucket and the hub's private address, where
machines reach the gateway's API through the hub's proxy. Which wheels an environment's
machines install is `build/environments/wheels.json` ({environment: build key}), written by
apply when it publishes them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
from pathlib import Path

from dask_gateway_server.backends.db_base import JobStatus
from traitlets import Float, Integer, Unicode, default

from deploy.cloud.deadman import DEFAULT_AFTER_SECONDS, DeadMan
from deploy.cloud.machine_boot import PYTHON
from deploy.cloud.machine_secrets import shard_key
from deploy.cloud.machines import (
    TAG_BUDGET,
    TAG_CLUSTER,
    TAG_PLATFORM,
    TAG_ROLE,
    TAG_USER,
    Machine,
    Machines,
    MachineSpec,
    alive,
)
from deploy.files import read_json_object
from deploy.gateway import vm_worker_launcher
from deploy.gateway.budgets import stop_reason_options
from deploy.gateway.machine_meter import MachineMetering
from deploy.gateway.secret_shards import TAG_SHARD, Known, SecretShards, machine_state, shard_of
from deploy.gateway.vm_batches import DEFAULT_MAX_BATCH, DEFAULT_WINDOW, LaunchBatcher
from deploy.runtime import env
from deploy.vm.environment_wheels import published_keys
from modules.spec import HUB_PORT

OUTPUTS = "outputs.json"
WORKDIR = "/var/lib/graticule/dask"
SECRET_ENV = "DASK_GATEWAY_API_TOKEN"  # never in user data: the machine's secret carries it
ASKS_THE_GATEWAY = "(asked of the gateway)"  # the scheduler address a VM worker gets at boot


class VMBackend(MachineMetering):
    templates_dir = Unicode(help="Directory of the rendered workers/<profile>.json", config=True)
    vm_python = Unicode("python3", help="The Python on the machines' image that runs Dask "
                                        "(clouds without machine secrets)", config=True)
    deadman_url = Unicode(help="What each machine's dead-man switch asks (default: the gateway's API health, "
                               "the same address the schedulers and workers talk to)", config=True)
    deadman_after = Float(DEFAULT_AFTER_SECONDS, help="Seconds without an answer from deadman_url before a "
                                                      "machine powers itself off (and is terminated)", config=True)
    launch_window = Float(DEFAULT_WINDOW, help="Seconds to gather a scale-up's worker launches into one batch",
                          config=True)
    max_batch = Integer(DEFAULT_MAX_BATCH, help="Machines per launch request at most", config=True)
    artifacts_bucket = Unicode(help="The artifacts bucket holding the environments' wheels "
                                    "(default: Terraform's output)", config=True)

    @default("deadman_url")
    def _deadman_url_default(self) -> str:
        return f"{self.api_url.rstrip('/')}/health"

    @default("templates_dir")
    def _templates_dir_default(self) -> str:
        return str(Path(os.environ.get(env.STATE_DIR, ".")) / "build" / "workers")

    @default("artifacts_bucket")
    def _artifacts_bucket_default(self) -> str:
        return str(self.outputs.get("artifacts_bucket") or "")

    @default("api_url")
    def _api_url_default(self) -> str:
        hub = self.hub_private_ip()
        if not hub:
            return super()._api_url_default()
        return f"http://{hub}:{HUB_PORT}{self.proxy.prefix}/api"

    # -- the rendered build and what apply published beside it ------------------------------

    @property
    def build_dir(self) -> Path:
        return Path(self.templates_dir).parent

    @property
    def outputs(self) -> dict:
        """Terraform's outputs, read once."""
        if getattr(self, "_outputs", None) is None:
            self._outputs = read_json_object(self.build_dir / OUTPUTS)
        return self._outputs

    def environment_wheels(self) -> dict:
        """{environment: build key} as apply last published it (read each time: apply rewrites it)."""
        return published_keys(self.build_dir)

    def environment_key(self, cluster) -> str | None:
        """The wheel-cache key of the cluster's environment (None: the image's Python only)."""
        wanted = (cluster.options or {}).get("environment")
        grants = self.spec.grants_of(cluster.username)
        name = wanted or (grants.environments[0] if grants and grants.environments else None)
        return self.environment_wheels().get(name) if name else None

    # -- what a cloud provides --------------------------------------------------------------

    def make_machines(self) -> Machines:
        raise NotImplementedError

    def template_of(self, worker_template: dict) -> str:
        """The cloud's name for the profile's launch/instance template."""
        raise NotImplementedError

    def make_secrets(self):
        """The cloud's machine secrets (put, allow, delete: deploy.cloud.machine_secrets), or
        None: then credentials travel in user data (`legacy_user_data`)."""
        return None

    def machines_per_secret(self) -> int | None:
        """How many machines one secret can be read by (None: any number): the shards' size."""
        return None

    def boot_user_data(self, cluster, command: list[str], environment: dict[str, str],
                       secret_key: str | None = None) -> str:
        """User data that reads the cluster's secret (`secret_key`: one of its shards; None:
        the cluster's own) and runs `command` (clouds with secrets)."""
        raise NotImplementedError

    def instance_profile_of(self, username: str) -> str | None:
        """The identity the user's machines run as (None: the template's)."""
        return None

    def hub_private_ip(self) -> str | None:
        """The hub's address inside the network, where machines reach the gateway's API."""
        return self.outputs.get("hub_private_ip")

    # -- the machines ---------------------------------------------------------------------

    @property
    def machines(self) -> Machines:
        if getattr(self, "_machines", None) is None:
            self._machines = self.make_machines()
        return self._machines

    @machines.setter
    def machines(self, value: Machines) -> None:
        self._machines = value

    @property
    def secrets(self):
        if not hasattr(self, "_secrets"):
            self._secrets = self.make_secrets()
        return self._secrets

    @secrets.setter
    def secrets(self, value) -> None:
        self._secrets = value
        self._shards = None

    @property
    def shards(self) -> SecretShards:
        if getattr(self, "_shards", None) is None:
            self._shards = SecretShards(self.secrets, self.machines_per_secret())
        return self._shards

    @property
    def batcher(self) -> LaunchBatcher:
        if getattr(self, "_batcher", None) is None:
            self._batcher = LaunchBatcher(lambda spec: self.machines.launch_batch(spec), self.launch_window,
                                          self.max_batch, launched=self._batch_launched)
        return self._batcher

    def worker_template(self, profile: str) -> dict:
        return json.loads((Path(self.templates_dir) / f"{profile}.json").read_text())

    def python_for(self, cluster) -> str:
        # the machine's own, not the gateway's: with secrets, the environment's, found at boot
        return PYTHON if self.secrets is not None else self.vm_python

    def known_scheduler_address(self, cluster) -> str:
        # Workers ask the gateway for the address at boot: they launch with the scheduler.
        return ASKS_THE_GATEWAY if self.secrets is not None else ""

    @staticmethod
    def secret_key(cluster) -> str:
        return f"cluster-{cluster.name}"

    def _profile(self, cluster) -> str:
        return (cluster.options or {}).get("profile") or self.spec.dask.default_profile

    def _machine_spec(self, cluster, role: str, name: str, command: list[str], environment: dict,
                      shard: int = 0) -> MachineSpec:
        template = self.worker_template(self._profile(cluster))
        tags = {TAG_PLATFORM: self.spec.name, TAG_CLUSTER: cluster.name, TAG_ROLE: role, TAG_USER: cluster.username}
        if shard:
            tags[TAG_SHARD] = str(shard)
        grants = self.spec.users.get(cluster.username)
        if grants is not None and grants.budget:
            tags[TAG_BUDGET] = grants.budget  # the hub's IAM policy refuses a launch without it
        if self.secrets is not None:
            environment = {k: v for k, v in environment.items() if k != SECRET_ENV}
            data = self.boot_user_data(cluster, command, environment, shard_key(self.secret_key(cluster), shard))
        else:
            data = legacy_user_data(command, environment, cluster.tls_cert, cluster.tls_key)
        return MachineSpec(
            name=f"{self.spec.name}-{name}"[:63],
            template=self.template_of(template),
            tags=tags,
            user_data=data,
            spot=bool(template.get("spot")),
            deadman=DeadMan(self.deadman_url, after_seconds=self.deadman_after) if self.deadman_url else None,
            instance_profile=self.instance_profile_of(cluster.username),
        )

    async def _launch(self, spec: MachineSpec) -> Machine:
        return await asyncio.to_thread(self.machines.launch, spec)

    async def _terminate(self, job) -> None:
        machine_id = (job.state or {}).get("machine_id")
        if machine_id:
            await asyncio.to_thread(self.machines.terminate, [machine_id])

    async def _alive(self, jobs) -> list[bool]:
        ids = [(job.state or {}).get("machine_id") or "" for job in jobs]
        return await asyncio.to_thread(alive, self.machines, ids)

    # -- the cluster's secret ------------------------------------------------------------------

    def _secret_values(self, cluster) -> dict:
        cert, key = self.get_tls_paths(cluster)
        return {"env": {SECRET_ENV: cluster.token},
                "files": {cert: cluster.tls_cert.decode(), key: cluster.tls_key.decode()}}

    def _known_machine_ids(self, cluster) -> Known:
        """{shard: ids} of the cluster's machines its jobs hold (after a restart: the database's)."""
        known: dict[int, set[str]] = {}
        for job in [cluster, *(w for w in cluster.workers.values() if w.status < JobStatus.STOPPED)]:
            if machine_id := (job.state or {}).get("machine_id"):
                known.setdefault(shard_of(job.state), set()).add(machine_id)
        # and the machines the previous gateway launched but never recorded: a worker may
        # adopt one later, so a new launch must not take its shard's room meanwhile
        if unrecorded := getattr(self, "_unrecorded", None):
            for machine in unrecorded.of_cluster(cluster.name):
                known.setdefault(shard_of(machine.tags), set()).add(machine.id)
        return known

    async def _allow(self, cluster, machine_ids: list[str], shard: int = 0) -> None:
        """Let the shard's machines, these new ones included, read it."""
        await self.shards.allow(self.secret_key(cluster), shard, machine_ids, self._known_machine_ids(cluster))

    async def _reserve_shard(self, cluster) -> int:
        return await self.shards.reserve(self.secret_key(cluster), lambda: self._known_machine_ids(cluster),
                                         lambda: self._secret_values(cluster),
                                         {TAG_CLUSTER: cluster.name, TAG_USER: cluster.username})

    # -- dask-gateway's do_* hooks ------------------------------------------------------------

    async def do_setup(self) -> None:
        pass

    async def do_cleanup(self) -> None:
        pass

    async def do_start_cluster(self, cluster):
        if self.secrets is not None:
            tags = {TAG_CLUSTER: cluster.name, TAG_USER: cluster.username}
            await self.shards.create(self.secret_key(cluster), self._secret_values(cluster), tags)
            await self._reserve_shard(cluster)  # shard 0, the secret just made
        command, environment = self.get_scheduler_command(cluster), self.get_scheduler_env(cluster)
        spec = self._machine_spec(cluster, "scheduler", f"{cluster.name[:16]}-s", command, environment)
        machine = await self._launch(spec)
        yield {"machine_id": machine.id, "private_ip": machine.private_ip}
        if self.secrets is not None:
            await self._allow(cluster, [machine.id])

    async def do_stop_cluster(self, cluster) -> None:
        if cluster.target == JobStatus.FAILED:
            await self._explain_failure(cluster)
        # Every machine of the cluster, workers the gateway lost track of included.
        tagged = await asyncio.to_thread(self.machines.list, {TAG_PLATFORM: self.spec.name,
                                                               TAG_CLUSTER: cluster.name})
        ids = sorted({m.id for m in tagged} | ({cluster.state["machine_id"]} if (cluster.state or {}).get(
            "machine_id") else set()))
        if ids:
            await asyncio.to_thread(self.machines.terminate, ids)
        if self.secrets is not None:
            await self.shards.delete(self.secret_key(cluster))

    async def _explain_failure(self, cluster) -> None:
        """A cluster whose scheduler machine went away (a spot reclaim) says so to its owner."""
        machine_id = (cluster.state or {}).get("machine_id")
        if not machine_id:
            return
        found = (await asyncio.to_thread(self.machines.describe, [machine_id])).get(machine_id)
        if found is not None and found.alive:
            return
        how = "a spot instance, reclaimed by the cloud" if found is not None and found.spot else "stopped"
        reason = (f"the cluster failed: its scheduler's machine {machine_id} ({how}) is gone; "
                  "start a new cluster (a profile without spot keeps the scheduler safe)")
        self.log.warning("Cluster %s: %s", cluster.name, reason)
        self.db.update_cluster(cluster, options=stop_reason_options(cluster.options, reason))

    async def do_check_clusters(self, clusters) -> list[bool]:
        return await self._alive(clusters)

    async def do_start_worker(self, worker):
        cluster = worker.cluster
        name = f"{cluster.name[:16]}-w-{worker.name[:8]}"
        environment = self.get_worker_env(cluster)
        shard = 0
        if self.secrets is None:
            spec = self._machine_spec(cluster, "worker", name, self.get_worker_command(cluster, worker.name),
                                      environment)
            machine = await self._launch(spec)
        else:
            shard = await self._reserve_shard(cluster)
            spec = self._machine_spec(cluster, "worker", name, self.worker_machine_command(cluster), environment,
                                      shard)
            try:  # batched with its shard's other launches, allowed its shard with them
                machine = await self.batcher.launch(f"{cluster.name}/{shard}", spec)
            except BaseException:
                self.shards.release(self.secret_key(cluster), shard)
                raise
        yield machine_state(machine.id, machine.private_ip, shard)

    async def _batch_launched(self, key: str, machines: list[Machine]) -> None:
        cluster_name, _, shard = key.rpartition("/")
        cluster = self.db.get_cluster(cluster_name)
        if cluster is not None:
            await self._allow(cluster, [m.id for m in machines], int(shard))

    def worker_machine_command(self, cluster) -> list[str]:
        """The same for every worker of the cluster: the launcher asks the gateway for the rest."""
        nthreads, memory_limit = self.worker_nthreads_memory_limit_args(cluster)
        source = Path(vm_worker_launcher.__file__).read_text()
        return [PYTHON, "-c", source, "--dashboard-address", f"{self.default_host}:0",
                "--nthreads", nthreads, "--memory-limit", memory_limit]

    async def do_stop_worker(self, worker) -> None:
        await self._terminate(worker)

    async def do_check_workers(self, workers) -> list[bool]:
        return await self._alive(workers)


def legacy_user_data(command: list[str], environment: dict[str, str], tls_cert: bytes, tls_key: bytes) -> str:
    """A shell script that writes the cluster's TLS credentials (0600) and runs `command`:
    for clouds without machine secrets only."""
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in sorted(environment.items()))
    return (
        "#!/bin/sh\nset -eu\numask 077\n"
        f"mkdir -p {WORKDIR} && cd {WORKDIR}\n"
        f"printf '%s' {shlex.quote(tls_cert.decode())} > dask.crt\n"
        f"printf '%s' {shlex.quote(tls_key.decode())} > dask.pem\n"
        f"{exports}exec {shlex.join(command)}\n"
    )


user_data = legacy_user_data  # the name deploy.gateway.gcp's users knew

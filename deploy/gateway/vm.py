"""The cloud-neutral VM backend: one machine per scheduler and one per worker.

Each is launched through the machines layer (`deploy.cloud`) from its profile's rendered
template (`workers/<profile>.json`, beside the gateway's build), with user data that
writes the cluster's TLS credentials and starts the scheduler or worker command. State
is `{"machine_id", "private_ip"}`; whether it still runs is asked of the machines layer
through `do_check_clusters`/`do_check_workers`, so a machine that dies has its usage
closed in the ledger (see `GraticuleBackend.liveness`). A cloud subclasses this with the
machines it uses and the way it names a template (`aws.py`, `gcp.py`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
from pathlib import Path

from traitlets import Float, Unicode, default

from deploy.cloud.deadman import DEFAULT_AFTER_SECONDS, DeadMan
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
from deploy.gateway.machine_meter import MachineMetering
from deploy.runtime import env

WORKDIR = "/var/lib/graticule/dask"


class VMBackend(MachineMetering):
    templates_dir = Unicode(help="Directory of the rendered workers/<profile>.json", config=True)
    vm_python = Unicode("python3", help="The Python on the machines' image that runs Dask", config=True)
    deadman_url = Unicode(help="What each machine's dead-man switch asks (default: the gateway's API health, "
                               "the same address the schedulers and workers talk to)", config=True)
    deadman_after = Float(DEFAULT_AFTER_SECONDS, help="Seconds without an answer from deadman_url before a "
                                                      "machine powers itself off (and is terminated)", config=True)

    @default("deadman_url")
    def _deadman_url_default(self) -> str:
        return f"{self.api_url.rstrip('/')}/health"

    @default("templates_dir")
    def _templates_dir_default(self) -> str:
        return str(Path(os.environ.get(env.STATE_DIR, ".")) / "build" / "workers")

    # -- what a cloud provides --------------------------------------------------------------

    def make_machines(self) -> Machines:
        raise NotImplementedError

    def template_of(self, worker_template: dict) -> str:
        """The cloud's name for the profile's launch/instance template."""
        raise NotImplementedError

    # -- the machines ---------------------------------------------------------------------

    @property
    def machines(self) -> Machines:
        if getattr(self, "_machines", None) is None:
            self._machines = self.make_machines()
        return self._machines

    @machines.setter
    def machines(self, value: Machines) -> None:
        self._machines = value

    def worker_template(self, profile: str) -> dict:
        return json.loads((Path(self.templates_dir) / f"{profile}.json").read_text())

    def python_for(self, cluster) -> str:
        return self.vm_python  # the machine's own, not the gateway's

    def _machine_spec(self, cluster, role: str, name: str, command: list[str], environment: dict) -> MachineSpec:
        profile = (cluster.options or {}).get("profile") or self.spec.dask.default_profile
        template = self.worker_template(profile)
        tags = {TAG_PLATFORM: self.spec.name, TAG_CLUSTER: cluster.name, TAG_ROLE: role, TAG_USER: cluster.username}
        grants = self.spec.users.get(cluster.username)
        if grants is not None and grants.budget:
            tags[TAG_BUDGET] = grants.budget  # the hub's IAM policy refuses a launch without it
        return MachineSpec(
            name=f"{self.spec.name}-{name}"[:63],
            template=self.template_of(template),
            tags=tags,
            user_data=user_data(command, environment, cluster.tls_cert, cluster.tls_key),
            spot=bool(template.get("spot")),
            deadman=DeadMan(self.deadman_url, after_seconds=self.deadman_after) if self.deadman_url else None,
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

    # -- dask-gateway's do_* hooks ------------------------------------------------------------

    async def do_setup(self) -> None:
        pass

    async def do_cleanup(self) -> None:
        pass

    async def do_start_cluster(self, cluster):
        command, environment = self.get_scheduler_command(cluster), self.get_scheduler_env(cluster)
        spec = self._machine_spec(cluster, "scheduler", f"{cluster.name[:16]}-s", command, environment)
        machine = await self._launch(spec)
        yield {"machine_id": machine.id, "private_ip": machine.private_ip}

    async def do_stop_cluster(self, cluster) -> None:
        await self._terminate(cluster)

    async def do_check_clusters(self, clusters) -> list[bool]:
        return await self._alive(clusters)

    async def do_start_worker(self, worker):
        cluster = worker.cluster
        command = self.get_worker_command(cluster, worker.name)
        name = f"{cluster.name[:16]}-w-{worker.name[:8]}"
        spec = self._machine_spec(cluster, "worker", name, command, self.get_worker_env(cluster))
        machine = await self._launch(spec)
        yield {"machine_id": machine.id, "private_ip": machine.private_ip}

    async def do_stop_worker(self, worker) -> None:
        await self._terminate(worker)

    async def do_check_workers(self, workers) -> list[bool]:
        return await self._alive(workers)


def user_data(command: list[str], environment: dict[str, str], tls_cert: bytes, tls_key: bytes) -> str:
    """A shell script that writes the cluster's TLS credentials (0600) and runs `command`."""
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in sorted(environment.items()))
    return (
        "#!/bin/sh\nset -eu\numask 077\n"
        f"mkdir -p {WORKDIR} && cd {WORKDIR}\n"
        f"printf '%s' {shlex.quote(tls_cert.decode())} > dask.crt\n"
        f"printf '%s' {shlex.quote(tls_key.decode())} > dask.pem\n"
        f"{exports}exec {shlex.join(command)}\n"
    )

"""The local target's gateway backend: schedulers and workers as processes on this machine.

Built on dask-gateway's local backend, which runs every cluster as the gateway's own
Unix user (platform.yaml users are not Unix accounts): users are kept apart by the
gateway's API (only the owner may see, connect to, scale or stop a cluster) and by each
cluster's own TLS credentials, which only its owner receives. Processes are detached
(see `deploy.gateway.processes`) so clusters survive a gateway restart; their state is
in the gateway's database under the state directory.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import psutil
from dask_gateway_server.backends.db_base import JobStatus
from dask_gateway_server.backends.local import UnsafeLocalBackend
from traitlets import default

from deploy.gateway import processes
from deploy.gateway.base import GraticuleBackend
from deploy.ports import free_port
from deploy.runtime import env as contract


class LocalProcessBackend(GraticuleBackend, UnsafeLocalBackend):
    @default("clusters_directory")
    def _clusters_directory_default(self) -> str:
        return str(Path(self.state_dir) / "clusters")

    @default("inherited_environment")
    def _inherited_environment_default(self) -> list[str]:
        # GRATICULE_STATE_DIR marks every process of a platform (see deploy.local.processes).
        inherited = UnsafeLocalBackend.class_traits()["inherited_environment"].default()
        return [*inherited, contract.STATE_DIR]

    @property
    def pidfiles(self) -> processes.PidFiles:
        return processes.PidFiles(Path(self.state_dir) / "pids")

    def get_logs_directory(self, workdir: str) -> str:
        # Logs outlive the cluster's working directory, for `platform logs CLUSTER`.
        return str(Path(self.state_dir) / "logs" / Path(workdir).name)

    async def start_process(self, cluster, cmd, env, name) -> tuple[int, float]:
        workdir = cluster.state["workdir"]
        log_path = os.path.join(self.get_logs_directory(workdir), f"{name}.log")
        pid, started = await processes.spawn_detached(cmd, env, workdir, log_path)
        self.pidfiles.add(cluster.name, name, pid, started)
        return pid, started

    async def do_setup(self) -> None:
        # Clusters whose scheduler died while the gateway was down are failed at once,
        # rather than after a missed heartbeat.
        running = [cluster for cluster in self.db.active_clusters() if cluster.status == JobStatus.RUNNING]
        alive = await self.do_check_clusters(running)
        dead = [cluster for cluster, ok in zip(running, alive, strict=True) if not ok]
        self.db.update_clusters([(cluster, {"target": JobStatus.FAILED}) for cluster in dead])
        for cluster in dead:
            self.queue.put(cluster)

    async def do_start_cluster(self, cluster):
        workdir = self.setup_working_directory(cluster)
        # The port is chosen here, not by the scheduler, so that the initial workers can
        # start at the same time as the scheduler (see GraticuleBackend).
        port = free_port()
        yield {"workdir": workdir, "scheduler_port": port}
        pid, started = await self.start_process(
            cluster,
            self.get_scheduler_command(cluster),
            self.get_scheduler_env(cluster),
            "scheduler",
        )
        yield {"workdir": workdir, "scheduler_port": port, "pid": pid, "started": started}

    def get_scheduler_command(self, cluster) -> list[str]:
        command = super().get_scheduler_command(cluster)
        port = cluster.state.get("scheduler_port")
        if port:
            command[command.index("--port") + 1] = str(port)
        return command

    def known_scheduler_address(self, cluster) -> str:
        port = (cluster.state or {}).get("scheduler_port")
        return f"tls://{self.default_host}:{port}" if port else ""

    async def do_stop_cluster(self, cluster):
        await processes.stop(cluster.state.get("pid"), cluster.state.get("started"))
        self.pidfiles.remove(cluster.name, "scheduler")
        workdir = cluster.state.get("workdir")
        if workdir is not None:
            self.cleanup_working_directory(workdir)

    async def do_start_worker(self, worker):
        cluster = worker.cluster
        pid, started = await self.start_process(
            cluster,
            self.get_worker_command(cluster, worker.name),
            self.get_worker_env(cluster),
            f"worker-{worker.name}",
        )
        yield {"pid": pid, "started": started}

    async def do_stop_worker(self, worker):
        await processes.stop(worker.state.get("pid"), worker.state.get("started"))
        self.pidfiles.remove(worker.cluster.name, f"worker-{worker.name}")

    async def do_check_clusters(self, clusters) -> list[bool]:
        return [_alive(cluster) for cluster in clusters]

    async def do_check_workers(self, workers) -> list[bool]:
        return [_alive(worker) for worker in workers]


def _alive(job) -> bool:
    """A scheduler's or worker's process is alive (a recycled PID is not: its start time differs)."""
    return processes.is_alive(job.state.get("pid"), job.state.get("started"))


def stop_local_clusters(state_dir: Path, timeout: float = 10.0) -> list[int]:
    """Stop every scheduler and worker the local gateway started, children included.

    For when the gateway itself is already stopped (`platform down` does the same from
    the same pid files). `state_dir` is the platform's GRATICULE_STATE_DIR. Returns the
    PIDs stopped.
    """
    pidfiles = processes.PidFiles(Path(state_dir) / "gateway" / "pids")
    family: list[psutil.Process] = []
    for path, pid, started in pidfiles.entries():
        with contextlib.suppress(psutil.NoSuchProcess):
            if processes.is_alive(pid, started):
                parent = psutil.Process(pid)
                family += [*parent.children(recursive=True), parent]
        path.unlink(missing_ok=True)
    for send in (psutil.Process.terminate, psutil.Process.kill):
        left = [proc for proc in family if not processes.gone(proc)]
        for proc in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                send(proc)
        # Not our children, so nobody here reaps them: zombies count as stopped.
        deadline = time.monotonic() + timeout
        while any(not processes.gone(proc) for proc in left) and time.monotonic() < deadline:
            time.sleep(0.1)
    return [proc.pid for proc in family]

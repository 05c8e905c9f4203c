"""Time from cluster request to 2 workers ready: graticule's gateway vs plain Dask.

graticule: `platform up` on a local platform (not timed), then per round
`Gateway.new_cluster(profile="small", workers=2)` with a user's hub token until the client
sees 2 workers; the cluster is shut down between rounds.
Baselines, measured in the same run with the same worker size (2 threads, 3 GiB):
- "plain, sequential": `dask scheduler`, then 2 `dask worker` once its address is known
  (what the gateway has to do: the scheduler picks its port);
- "plain, parallel": scheduler and workers started at once on a port chosen beforehand.
Median of ROUNDS rounds each; the target is a ratio of at most 1.3.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distributed import Client

from tests.support.local_platform import local_platform
from tests.support.procs import free_port, kill_tree

ROUNDS = 5
WORKER_ARGS = ["--nthreads", "2", "--memory-limit", "3GiB"]

PLATFORM = """\
apiVersion: graticule/v1
name: bench
target: local
hub:
  auth: {provider: local}
  default_profile: small
groups:
  users: {budget: lab, profiles: [small], environments: [default]}
users:
  - {name: alice, groups: [users]}
budgets:
  lab: {monthly_usd: 1000}
profiles:
  small: {cpu: 2, memory: 3GiB}
dask:
  default_profile: small
  max_workers: 4
environments:
  default: {python: "3.11", packages: ["dask[distributed]==2026.8.0"]}
"""


def _dask(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_file(path: Path, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(path.read_text())
        time.sleep(0.01)
    raise TimeoutError(path)


def _two_workers_ready(address: str, procs: list[subprocess.Popen], start: float) -> float:
    """Start two workers for the scheduler at `address` (added to `procs`, which the caller
    stops); seconds from `start` until both have joined."""
    procs += [_dask("worker", address, *WORKER_ARGS) for _ in range(2)]
    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
        return time.perf_counter() - start


def plain_sequential() -> float:
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmp:
        scheduler_file = Path(tmp) / "scheduler.json"
        try:
            start = time.perf_counter()
            procs.append(
                _dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(scheduler_file))
            )
            address = _wait_file(scheduler_file)["address"]
            return _two_workers_ready(address, procs, start)
        finally:
            for proc in procs:
                kill_tree(proc.pid)


def plain_parallel() -> float:
    address = f"tcp://127.0.0.1:{free_port()}"
    procs: list[subprocess.Popen] = []
    try:
        start = time.perf_counter()
        procs.append(_dask("scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1]))
        return _two_workers_ready(address, procs, start)
    finally:
        for proc in procs:
            kill_tree(proc.pid)


def graticule(lp, token: str) -> float:
    gateway = lp.gateway("alice", token=token)
    try:
        start = time.perf_counter()
        cluster = gateway.new_cluster(profile="small", workers=2)
        try:
            with cluster.get_client(set_as_default=False) as client:
                client.wait_for_workers(2, timeout=120)
                return time.perf_counter() - start
        finally:
            cluster.shutdown()
            _wait_stopped(lp.state_dir, cluster.name)  # the next round starts on a quiet machine
    finally:
        gateway.close()


def _wait_stopped(state_dir: Path, cluster: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while list((state_dir / "gateway" / "pids").glob(f"{cluster}.*.json")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"cluster {cluster} still has processes")
        time.sleep(0.1)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, local_platform(PLATFORM, Path(tmp)) as lp:
        token = lp.token("alice")
        graticule(lp, token)  # warm-up: first-use costs (page cache, hub token lookup)
        times: dict[str, list[float]] = {"graticule": [], "sequential": [], "parallel": []}
        for _ in range(ROUNDS):  # interleaved, so machine load hits all three alike
            times["graticule"].append(graticule(lp, token))
            times["sequential"].append(plain_sequential())
            times["parallel"].append(plain_parallel())
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        rounds = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:>11}: median {median[name]:.2f} s  (rounds: {rounds})")
    for baseline in ("sequential", "parallel"):
        ratio = median["graticule"] / median[baseline]
        print(f"ratio graticule / plain {baseline}: {ratio:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()

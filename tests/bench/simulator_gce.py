"""The GCE path of the machine simulator benchmark (called by bench_simulator): from
instances.insert through the fake Compute API to the startup script's HTTP server
answering, split as the AWS path is (notice, sandbox setup, startup script)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.gce.server import running_fake_compute
from tests.support.simulator.gce_probes import delete_instance, insert_instance, make_subnetwork
from tests.support.simulator.gce_simulator import GceSimulator
from tests.support.simulator.netns import connect_in_ns


def _answered(sim: GceSimulator, box, timeout: float = 120.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connect_in_ns(sim.vpc.name, box.ip, 8000, timeout=1).close()
            return time.monotonic()
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"{box.name}: the startup script's server never answered")


def launches(workdir: Path, rounds: int, script: str) -> list[dict[str, float]]:
    """Per-launch phases, in seconds, of `rounds` instances inserted one after another."""
    phases = []
    with running_fake_compute() as compute, GceSimulator(compute, workdir, poll_interval=0.05) as sim:
        subnetwork = make_subnetwork(compute)
        for round_ in range(rounds):
            name = f"bench-{round_}"
            begin = time.monotonic()
            insert_instance(compute, name, subnetwork, script)
            box = sim.wait_running(name)
            answered = _answered(sim, box)
            phases.append({"notice": box.extra["detected_at"] - begin, "setup": box.extra["setup_seconds"],
                           "user_data": answered - box.extra["started_at"], "total": answered - begin})
            delete_instance(compute, name)
            sim.wait_stopped(box.instance_id)
    return phases

"""Timed runs of this suite (or part of it) through pytest-xdist, for the suite benchmarks.

Each run is a pytest process as scripts/test.sh starts it (`--dist loadgroup
--no-loadscope-reorder`) with the given workers and arguments; measured: wall time, the CPU
time of the run's processes (user + system, all children), cores busy on average (CPU over
wall), the 1-minute load average sampled every 10 s (this machine is shared: it says how
much of the wall time was other people's), and pytest's closing summary line.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
XDIST = ("--dist", "loadgroup", "--no-loadscope-reorder")


@dataclass
class SuiteRun:
    label: str
    wall: float
    cpu: float
    load: list[float]
    summary: str
    returncode: int

    @property
    def cores_busy(self) -> float:
        return self.cpu / self.wall if self.wall else 0.0

    def line(self, baseline: SuiteRun | None = None) -> str:
        ratio = f"  {self.wall / baseline.wall:5.2f}x the baseline's wall" if baseline else ""
        load = f"{statistics.mean(self.load):5.1f} (max {max(self.load):.1f})" if self.load else "  n/a"
        return (f"{self.label:28} wall {self.wall / 60:6.1f} min  cpu {self.cpu / 60:6.1f} min  "
                f"cores busy {self.cores_busy:4.2f}  load {load}{ratio}\n"
                f"{'':28} {self.summary} (exit {self.returncode})")


def run_suite(label: str, workers: int, args: list[str], log: Path) -> SuiteRun:
    """One pytest run of `args` on `workers` xdist workers; its output goes to `log`."""
    command = [sys.executable, "-m", "pytest", "-n", str(workers), *XDIST, "-q", "-p", "no:randomly", *args]
    load: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(10):
            load.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    sampler.start()
    with log.open("w") as out:
        result = subprocess.run(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return SuiteRun(label, wall, cpu, load, lines[-1] if lines else "(no output)", result.returncode)


def report(runs: list[SuiteRun]) -> None:
    for run in runs:
        print(run.line(runs[0] if run is not runs[0] else None), flush=True)

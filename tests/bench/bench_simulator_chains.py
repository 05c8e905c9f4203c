"""The suite's critical path: its simulator tests (every AWS and GCP e2e module and the
simulator's own) on one xdist worker, one after another (`--simulator-chains one`, the
baseline), then split (the default: a worker per simulated platform, the simulator's own
modules placed like any others; tests/support/xdist_groups.py).

    SUITE_BENCH_WORKERS=2  (default: the cores; the first count only)

Both runs boot both platforms (20-30 min each on 2 shared cores): run it on purpose, alone.
Logs go to a temporary directory, named in the output.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .suite_runs import report, run_suite

SELECTION = ["-m", "simulator", "-x", "--durations=25"]


def main() -> None:
    workers = int(os.environ.get("SUITE_BENCH_WORKERS", str(os.cpu_count() or 1)).split(",")[0])
    logs = Path(tempfile.mkdtemp(prefix="bench-chains-"))
    print(f"the simulator tests on {workers} workers, {os.cpu_count()} cores; logs in {logs}", flush=True)
    runs = []
    for chains in ("one", "split"):
        runs.append(run_suite(f"--simulator-chains {chains}", workers,
                              [*SELECTION, "--simulator-chains", chains], logs / f"{chains}.log"))
        print(runs[-1].line(runs[0] if len(runs) > 1 else None), flush=True)
    print("-- summary")
    report(runs)

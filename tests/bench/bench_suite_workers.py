"""How many pytest-xdist workers the suite's non-simulator part wants (scripts/test.sh's
TEST_WORKERS default): the same selection run once per worker count, one after another;
the baseline is the first count (one worker per core, xdist's `auto`).

    SUITE_BENCH_WORKERS=2,3,4  (default: cores, cores + 1, 2 x cores)
    SUITE_BENCH_ARGS='-m "not simulator"'  (default; any pytest arguments, shell-quoted)

Each run takes as long as that part of the suite (15-30 min on 2 shared cores): run it on
purpose, alone. Logs go to a temporary directory, named in the output.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

from .suite_runs import report, run_suite

DEFAULT_ARGS = '-m "not simulator"'


def worker_counts() -> list[int]:
    configured = os.environ.get("SUITE_BENCH_WORKERS")
    if configured:
        return [int(n) for n in configured.split(",")]
    cores = os.cpu_count() or 1
    return sorted({cores, cores + 1, 2 * cores})


def main() -> None:
    args = shlex.split(os.environ.get("SUITE_BENCH_ARGS", DEFAULT_ARGS))
    logs = Path(tempfile.mkdtemp(prefix="bench-suite-"))
    print(f"pytest {shlex.join(args)} on {os.cpu_count()} cores; logs in {logs}", flush=True)
    runs = []
    for workers in worker_counts():
        runs.append(run_suite(f"-n {workers}", workers, args, logs / f"n{workers}.log"))
        print(runs[-1].line(runs[0] if len(runs) > 1 else None), flush=True)
    print("-- summary")
    report(runs)

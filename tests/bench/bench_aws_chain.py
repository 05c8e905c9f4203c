"""The AWS simulator chain (every module on the session's `aws_platform`, the suite's
critical path) on one xdist worker as scripts/test.sh runs it, twice:

- baseline `--tiny-handover off`: each module with tiny environments applies them and
  reverts them (a Terraform apply and a hub config sync each way), in collection order;
- default: those modules run last and hand the tiny environments over (tests/support/handover.py).

Printed: wall, CPU, load (suite_runs.py) and the `platform apply` runs each made, counted
from the Terraform logs of the platform's checkout (one `plan` per apply or destroy).
Each run boots and destroys a platform (20-30 min on 2 shared cores): run it on purpose, alone.
"""

from __future__ import annotations

import glob
import tempfile
from pathlib import Path

from .suite_runs import REPO, report, run_suite

MODULES = sorted(str(path.relative_to(REPO)) for path in (REPO / "tests").glob("test_aws_*_e2e.py"))


def main() -> None:
    logs = Path(tempfile.mkdtemp(prefix="bench-aws-chain-"))
    print(f"{len(MODULES)} modules on one worker; logs in {logs}", flush=True)
    runs = []
    for handover in ("off", "on"):
        base = logs / f"tmp-{handover}"
        args = [*MODULES, "-x", "--durations=25", "--tiny-handover", handover, f"--basetemp={base}"]
        runs.append(run_suite(f"--tiny-handover {handover}", 1, args, logs / f"{handover}.log"))
        plans = glob.glob(str(base / "**/terraform/aws/logs/*-plan.log"), recursive=True)
        print(runs[-1].line(runs[0] if len(runs) > 1 else None), flush=True)
        print(f"{'':28} terraform plans of the platform (applies + destroy): {len(plans)}", flush=True)
    print("-- summary")
    report(runs)

"""`python -m tests.mutation [MODULE ...] [--workers N] [--timeout S] [--list]`

A mutation check: for each module (default: every module in `tests/mutation/targets.py`),
change one thing at a time (see `operators.py`), run the module's fast tests, and print
killed / survived / kill rate per module and every survivor. Like a benchmark it informs;
it is slow and never part of the test suite's pass or fail.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tests.mutation.operators import mutants
from tests.mutation.runner import Outcome, run_target
from tests.mutation.targets import resolve

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    about = " ".join(__doc__.split("\n\n")[1].split())
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=about)
    parser.add_argument("modules", nargs="*", help="e.g. render/checks.py or deploy/budgets/ (default: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per test run (a hang counts as killed)")
    parser.add_argument("--list", action="store_true", help="list the mutants without running anything")
    args = parser.parse_args(argv)
    targets = resolve(args.modules)
    if args.list:
        for target in targets:
            for source in target.sources:
                for mutant in mutants(source, (REPO / source).read_text()):
                    print(mutant.label())
        return 0
    summary = []
    for target in targets:
        started = time.monotonic()
        print(f"== {target.name}: tests {' '.join(target.tests)}" + (f" -k {target.select!r}" if target.select else ""))

        def progress(outcome: Outcome) -> None:
            print("." if outcome.killed else "S", end="", flush=True)

        outcomes = run_target(REPO, target, args.workers, args.timeout, progress)
        killed = sum(o.killed for o in outcomes)
        survivors = [o for o in outcomes if not o.killed]
        rate = 100.0 * killed / len(outcomes) if outcomes else 100.0
        print(f"\n{target.name}: {killed} killed, {len(survivors)} survived, kill rate {rate:.1f}% "
              f"({time.monotonic() - started:.0f} s)")  # fmt: skip
        for outcome in survivors:
            print(f"  survived  {outcome.mutant.label()}")
        summary.append((target.name, killed, len(survivors), rate))
    print("\nmodule                 killed  survived  kill rate")
    for name, killed, survived, rate in summary:
        print(f"{name:<22} {killed:>6}  {survived:>8}  {rate:>8.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

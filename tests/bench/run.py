"""Run every benchmark: `python -m tests.bench.run [NAME ...]`.

Each `tests/bench/bench_<name>.py` has a `main()` that measures its subject and a
baseline in the same run and prints figures and ratios. Benchmarks are never pytest
tests: this machine is shared and noisy, so timings inform, they do not gate.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from tests import bench


def main(names: list[str]) -> int:
    found = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    chosen = [n for n in found if not names or n.removeprefix("bench_") in names or n in names]
    for name in chosen:
        print(f"== {name}", flush=True)
        importlib.import_module(f"tests.bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""How long `platform validate` takes, against `python -c 'import yaml'` as a baseline.

Baseline: starting Python and importing a YAML library, the least any YAML-reading CLI
pays. Measured for the example and for a generated 2,000-user, 200-group, 100-profile
config, as CLI processes (what a user waits for: wall time, and CPU time, which the other
load on a shared machine disturbs less) and in-process (the validation alone), with the
machine catalogs loaded; the catalogs' own load time is printed apart. Budgets from
issue 11: the example under 0.3 s and the big config under 0.6 s through the CLI.

Child processes may write bytecode (as an installed package has it): the first run of
each command is a warm-up and is not counted.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from render import catalog
from render.validate import validate_text
from tests.conftest import REPO
from tests.support.generate import big_platform_yaml

RUNS = 9
BUDGET_S = {"example": 0.3, "big": 0.6}
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def _cli_seconds(args: list[str]) -> tuple[float, float]:
    """Median wall and CPU seconds of running `args`, after one warm-up run."""
    subprocess.run(args, check=True, capture_output=True, env=ENV)
    walls, cpus = [], []
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, env=ENV)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def _in_process_seconds(text: str) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        validate_text(text)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _catalog_load_seconds() -> float:
    """Reading and decoding both bundled catalogs, as the first validation does."""
    samples = []
    for _ in range(RUNS):
        catalog.load.cache_clear()
        start = time.perf_counter()
        for cloud in catalog.CLOUDS:
            catalog.load(cloud)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _row(label: str, wall: float, cpu: float, baseline: tuple[float, float], budget: float | None) -> str:
    verdict = "" if budget is None else f"   budget {budget:.1f} s: {'ok' if wall < budget else 'OVER'}"
    return (
        f"{label:45s} {wall * 1000:7.1f} ms wall x{wall / baseline[0]:.2f}   {cpu * 1000:7.1f} ms cpu "
        f"x{cpu / baseline[1]:.2f}{verdict}"
    )


def main() -> None:
    baseline = _cli_seconds([sys.executable, "-c", "import yaml"])
    example = (REPO / "platform.yaml").read_text()
    big = big_platform_yaml(users=2000, groups=200, profiles=100)
    with tempfile.TemporaryDirectory() as tmp:
        big_path = Path(tmp) / "platform.yaml"
        big_path.write_text(big)
        cli = [sys.executable, "-m", "deploy.cli.main", "validate"]
        example_cli = _cli_seconds([*cli, str(REPO / "platform.yaml")])
        big_cli = _cli_seconds([*cli, str(big_path)])
    catalogs = _catalog_load_seconds()
    example_core = _in_process_seconds(example)
    big_core = _in_process_seconds(big)
    print(_row("baseline  python -c 'import yaml'", *baseline, baseline, None))
    print(_row("validate  example (CLI)", *example_cli, baseline, BUDGET_S["example"]))
    print(_row("validate  2000 users/200 groups/100 profiles", *big_cli, baseline, BUDGET_S["big"]))
    sizes = sum((REPO / "render" / "data" / f"catalog_{cloud}.json").stat().st_size for cloud in catalog.CLOUDS)
    print(f"catalogs  load aws + gcp ({sizes // 1024} KiB)           {catalogs * 1000:7.1f} ms (in every run above)")
    print(f"in-process validation, example               {example_core * 1000:7.1f} ms")
    print(f"in-process validation, big ({len(big) // 1024} KiB)           {big_core * 1000:7.1f} ms")
    print(f"(median of {RUNS} runs each; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()

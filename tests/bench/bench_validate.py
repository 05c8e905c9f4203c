"""How long `platform validate` takes, against `python -c 'import yaml'` as a baseline.

Baseline: starting Python and importing a YAML library, the least any YAML-reading CLI
pays. Measured for the example and for a generated 2,000-user, 200-group, 100-profile
config, as CLI processes (what a user waits for) and in-process (the validation alone).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from render.validate import validate_text
from tests.conftest import REPO
from tests.support.generate import big_platform_yaml

RUNS = 7


def _cli_seconds(args: list[str]) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _in_process_seconds(text: str) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        validate_text(text)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


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
    example_core = _in_process_seconds(example)
    big_core = _in_process_seconds(big)
    print(f"baseline  python -c 'import yaml'            {baseline * 1000:8.1f} ms")
    print(f"validate  example (CLI)                      {example_cli * 1000:8.1f} ms   x{example_cli / baseline:.2f}")
    print(f"validate  2000 users/200 groups/100 profiles {big_cli * 1000:8.1f} ms   x{big_cli / baseline:.2f}")
    print(f"in-process validation, example               {example_core * 1000:8.1f} ms")
    print(f"in-process validation, big ({len(big) // 1024} KiB)           {big_core * 1000:8.1f} ms")
    print(f"(median of {RUNS} runs each)")


if __name__ == "__main__":
    main()

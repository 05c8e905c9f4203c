"""Render time against `platform validate` of the same file (the baseline).

Two configs: the example, and a generated 2,000-user / 200-group / 100-profile one;
for each target, in-process timings (best of a few runs, after one warm-up) and CLI
subprocess timings (what a user or CI waits for). Target: rendering adds < 1.5 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.generate import big_platform_yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO.parent / "shared" / "platform.example.yaml"
TARGETS = ("local", "aws", "gcp")
RUNS = 3
BUDGET_S = 1.5


def _best(action: Callable[[], object], runs: int = RUNS) -> float:
    action()  # warm-up: imports, jsii runtime start
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def _cli(*arguments: str) -> float:
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "deploy.cli.main", *arguments], capture_output=True, text=True)
        timings.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise RuntimeError(f"platform {' '.join(arguments)}: {result.stderr.strip()}")
    return statistics.median(timings)


def _report(label: str, baseline: float, measured: float) -> None:
    added = measured - baseline
    verdict = "ok" if added < BUDGET_S else f"OVER the {BUDGET_S} s target"
    print(
        f"  {label:<34} validate {baseline:7.3f} s   render {measured:7.3f} s   "
        f"ratio {measured / baseline:5.2f}x   adds {added:+.3f} s  ({verdict})",
        flush=True,
    )


def bench_config(name: str, text_for: Callable[[str], str], workdir: Path) -> None:
    """`text_for(target)` is the config with `target:` set, so validate checks what render renders."""
    from deploy.build_dir import load_for_target
    from render.build import render

    print(f"{name}", flush=True)
    for target in TARGETS:
        config = workdir / f"{target}.yaml"
        config.write_text(text_for(target))
        out = workdir / f"build-{target}"
        try:
            validate = _best(lambda config=config: load_for_target(config, str(config), None))
            full = _best(lambda config=config: render(load_for_target(config, str(config), None)))
            _report(f"{target}: in-process (best of {RUNS})", validate, full)
            cli_validate = _cli("validate", str(config))
            cli_render = _cli("render", str(config), "--out", str(out))
            _report(f"{target}: CLI (median of {RUNS})", cli_validate, cli_render)
        except Exception as exc:  # one broken target should not hide the others' figures
            print(f"  {target}: failed: {type(exc).__name__}: {exc}", flush=True)


def main() -> None:
    example = (EXAMPLE if EXAMPLE.exists() else REPO / "platform.yaml").read_text()
    with tempfile.TemporaryDirectory(prefix="graticule-bench-render-") as temporary:
        workdir = Path(temporary)
        bench_config("example", lambda target: example.replace("target: local", f"target: {target}", 1), workdir)
        bench_config(
            "generated: 2000 users, 200 groups, 100 profiles",
            lambda target: big_platform_yaml(users=2000, groups=200, profiles=100, target=target),
            workdir,
        )


if __name__ == "__main__":
    main()

"""Cluster start time by environment: the default environment (baseline), a prebuilt
(locked) one, package sync with the environment already built (warm) and not yet built
(cold). Target: a warm sync adds under 0.5 s to the baseline.

Runs a real local platform; uv resolves from a wheelhouse made here (no network). Each
figure is the time `graticule.Cluster(...)` takes to return a running cluster, measured
inside a laptop-like virtual environment (the SDK, distributed, dask-gateway and an
editable local project), median of a few runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import textwrap
from pathlib import Path

from deploy.cli.main import main as platform_main
from deploy.environments import uv
from tests.support import environments as support
from tests.support import wheelhouse
from tests.support.local_platform import local_platform

RUNS = 3
SCRIPT = textwrap.dedent("""
    import json, sys, time, warnings
    import graticule
    warnings.simplefilter("ignore")
    options = json.loads(sys.argv[1])
    started = time.perf_counter()
    cluster = graticule.Cluster(**options)
    seconds = time.perf_counter() - started
    cluster.close()
    print(json.dumps(seconds))
""")


def _start_time(venv: Path, env: dict[str, str], **options) -> float:
    done = subprocess.run([str(venv / "bin" / "python"), "-c", SCRIPT, json.dumps(options)],
                          capture_output=True, text=True, env=env, cwd=venv, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-env-") as tmp:
        base = Path(tmp)
        with support.wheelhouse_in_use(base):
            venv = support.shared_venv(base, "bench", ("distributed", "dask-gateway", "setuptools"))
            project = wheelhouse.make_project(base / "projects", "benchextra", "0.1", "X = 1")
            subprocess.run([uv.binary(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                            "-e", str(project)], check=True, capture_output=True)
            workdir = base / "platform"
            workdir.mkdir()
            (workdir / "platform.yaml").write_text(support.PLATFORM_YAML)
            platform_main(["lock", str(workdir / "platform.yaml")])
            with local_platform(support.PLATFORM_YAML, workdir) as lp:
                env = {k: v for k, v in os.environ.items() if not k.startswith(("GRATICULE_", "JUPYTERHUB_"))}
                env.update(
                    GRATICULE_TOKEN=lp.token("alice"),
                    GRATICULE_GATEWAY_URL=lp.gateway_url,
                    GRATICULE_GATEWAY_SCHEDULER_URL=f"tls://127.0.0.1:{lp.gateway_port}",
                    GRATICULE_CONFIG_DIR=str(base / "conf"),
                )
                _start_time(venv, env, environment="default")  # warm-up: imports, first pyc
                figures: dict[str, list[float]] = {"default (baseline)": [], "prebuilt ml": [],
                                                   "sync warm": [], "sync cold": []}
                module = project / "benchextra" / "__init__.py"
                for run in range(RUNS):
                    figures["default (baseline)"].append(_start_time(venv, env, environment="default"))
                    figures["prebuilt ml"].append(_start_time(venv, env, environment="ml"))
                    module.write_text(f"X = {run + 2}\n")  # a new key: the gateway must build it
                    figures["sync cold"].append(_start_time(venv, env, sync=True))
                    figures["sync warm"].append(_start_time(venv, env, sync=True))
    baseline = statistics.median(figures["default (baseline)"])
    print(f"cluster start, median of {RUNS} (seconds; added to the default environment's start)")
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"  {name:20s} {median:7.3f} s   +{median - baseline:6.3f} s   x{median / baseline:5.2f}")
    added = statistics.median(figures["sync warm"]) - baseline
    verdict = "meets" if added < 0.5 else "misses"
    print(f"warm sync adds {added:.3f} s: {verdict} the target of < 0.5 s")


if __name__ == "__main__":
    main()

"""`platform up` to a healthy hub, against a bare `jupyterhub` started in the same run.

graticule's `up` does more than the baseline: it validates and renders platform.yaml,
generates secrets, starts a separate proxy and the dask-gateway server as well, and
waits until all three answer. The ratio says what that costs; a re-`up` with nothing
changed (the common case in GitOps) and `down` are timed too.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.local_platform import LocalPlatform, local_platform
from tests.support.procs import free_port, kill_tree, wait_for_http

ROUNDS = 3

CONFIG = """\
apiVersion: graticule/v1
name: benchup
target: local
hub:
  auth: {provider: local}
  default_profile: small
groups:
  ocean: {profiles: [small], environments: [default]}
users:
  - {name: alice, groups: [ocean]}
profiles:
  small: {cpu: 1, memory: 1GiB}
dask:
  default_profile: small
environments:
  default: {python: "3.11", packages: ["dask[distributed]==2026.8.0"]}
"""

BARE_CONFIG = """\
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.JupyterHub.db_url = "sqlite:///{dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{dir}/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{"alice"}}
"""


def bare_jupyterhub() -> float:
    """Seconds from starting `jupyterhub` (with its own proxy) to an answering hub API."""
    with tempfile.TemporaryDirectory() as directory:
        port, hub_port, api_port = free_port(), free_port(), free_port()
        config = Path(directory) / "jupyterhub_config.py"
        config.write_text(BARE_CONFIG.format(port=port, hub_port=hub_port, api_port=api_port, dir=directory))
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/hub/api/", timeout=120, proc=proc)
            return time.perf_counter() - started
        finally:
            kill_tree(proc.pid)


def graticule_up() -> tuple[float, float, float]:
    """Seconds for `platform up` (cold), `platform up` again (nothing changed), `platform down`."""
    with tempfile.TemporaryDirectory() as directory:
        platform: LocalPlatform
        started = time.perf_counter()
        with local_platform(CONFIG, Path(directory)) as platform:
            cold = time.perf_counter() - started
            started = time.perf_counter()
            platform.up()
            warm = time.perf_counter() - started
            started = time.perf_counter()
            platform.down()
            down = time.perf_counter() - started
    return cold, warm, down


def main() -> None:
    bare, cold, warm, down = [], [], [], []
    for _ in range(ROUNDS):  # interleaved, so both see the same load on a shared machine
        bare.append(bare_jupyterhub())
        up_cold, up_warm, stop = graticule_up()
        cold.append(up_cold)
        warm.append(up_warm)
        down.append(stop)
    baseline = statistics.median(bare)
    rows = [
        ("bare jupyterhub to healthy hub (baseline)", baseline),
        ("platform up, cold (proxy + hub + gateway healthy)", statistics.median(cold)),
        ("platform up again, nothing changed", statistics.median(warm)),
        ("platform down (everything stopped, by PID)", statistics.median(down)),
    ]
    print(f"median of {ROUNDS} rounds")
    for label, seconds in rows:
        print(f"  {label:<52} {seconds:6.2f} s   x{seconds / baseline:5.2f}")


if __name__ == "__main__":
    main()

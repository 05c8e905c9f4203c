"""The SDK waits out a restarting gateway: a real local platform (`platform up`: hub, its
configurable-http-proxy, dask-gateway) whose gateway process is stopped by PID, so the
hub's proxy answers 503 for the gateway's routes, as it does while a re-apply restarts the
gateway. `graticule.Cluster` runs in a separate Python (as a user's would) and:

- says once on stderr that it waits, and starts its cluster once `platform up` has brought
  the gateway back (ordering, not timing: the gateway comes back only after that line);
- with a gateway that does not come back, ends after its bound (`gateway_wait`) with
  GatewayUnavailable, a plain message and no traceback.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import psutil
import pytest

from graticule import _env
from tests.support.local_platform import REPO, LocalPlatform, local_platform
from tests.support.procs import started

pytestmark = pytest.mark.slow
LINE_WAIT = 180  # a guard against a hang, not an expectation of speed
WAITING = "waiting up to"

PLATFORM = """\
apiVersion: graticule/v1
name: gwrestart
target: local
hub:
  auth: {provider: local}
  default_profile: small
groups:
  ocean: {budget: lab, profiles: [small], environments: [default]}
users:
  - {name: alice, groups: [ocean]}
budgets:
  lab: {monthly_usd: 1000}
profiles:
  small: {cpu: 2, memory: 3GiB}
dask:
  default_profile: small
  max_workers: 2
  idle_timeout: 1h
  max_lifetime: 24h
environments:
  default: {python: "3.11", packages: ["dask[distributed]==2026.8.0"]}
"""

CLIENT = textwrap.dedent("""\
    import sys
    import graticule
    from graticule.errors import GraticuleError
    try:
        with graticule.Cluster(profile="small", n_workers=1, gateway_wait=float(sys.argv[1])) as cluster:
            with cluster.get_client(set_as_default=False) as client:
                print("SUM", client.submit(sum, range(101)).result(timeout=120), flush=True)
    except GraticuleError as exc:
        print("ERROR", type(exc).__name__, exc, flush=True)
        sys.exit(3)
""")


@pytest.fixture(scope="module")
def lp(tmp_path_factory) -> Iterator[LocalPlatform]:
    with local_platform(PLATFORM, tmp_path_factory.mktemp("gwrestart")) as handle:
        yield handle


@pytest.fixture(scope="module")
def token(lp) -> str:
    return lp.token("alice")


def _stop_gateway(lp: LocalPlatform) -> None:
    (gateway,) = [c for c in lp.status()["components"] if c["name"] == "gateway"]
    assert gateway["pid"], gateway
    process = psutil.Process(gateway["pid"])
    process.terminate()
    process.wait(30)


class _Client:
    """The SDK in its own Python; its stderr lines readable as they come."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def wait_for_line(self, text: str) -> str:
        while True:
            try:
                line = self.lines.get(timeout=LINE_WAIT)
            except queue.Empty:
                raise AssertionError(f"no line with {text!r}; stderr so far:\n{''.join(self.stderr)}") from None
            if text in line:
                return line

    def finish(self) -> tuple[int, str, str]:
        out = self.proc.stdout.read()
        code = self.proc.wait(LINE_WAIT * 2)
        return code, out, "".join(self.stderr)


def _client(lp: LocalPlatform, token: str, tmp_path, gateway_wait: float):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRATICULE_", "JUPYTERHUB_"))}
    env.update({_env.GATEWAY_URL: lp.gateway_url, _env.TOKEN: token,
                _env.GATEWAY_SCHEDULER_URL: lp.scheduler_address, _env.CONFIG_DIR: str(tmp_path / "config"),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))})
    return started([sys.executable, "-c", CLIENT, str(gateway_wait)], env=env, cwd=tmp_path, text=True,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_start_refused_with_503_goes_through_once_the_gateway_is_back(lp, token, tmp_path):
    _stop_gateway(lp)
    try:
        with _client(lp, token, tmp_path, gateway_wait=LINE_WAIT * 2) as proc:
            client = _Client(proc)
            said = client.wait_for_line(WAITING)
            assert "HTTP 503" in said and lp.gateway_url in said
            lp.up()  # the gateway is started again (it is not running), the rest left alone
            code, out, err = client.finish()
    finally:
        lp.up()
    assert code == 0, out + err
    assert "SUM 5050" in out
    assert err.count(WAITING) == 1 and "Traceback" not in err


def test_a_gateway_that_never_comes_back_ends_the_wait_with_a_clear_error(lp, token, tmp_path):
    _stop_gateway(lp)
    try:
        with _client(lp, token, tmp_path, gateway_wait=2) as proc:
            client = _Client(proc)
            client.wait_for_line(WAITING)
            code, out, err = client.finish()
    finally:
        lp.up()
    assert code == 3, out + err
    assert f"ERROR GatewayUnavailable the gateway at {lp.gateway_url} still answered HTTP 503 after 2 s" in out
    assert err.count(WAITING) == 1 and "Traceback" not in err

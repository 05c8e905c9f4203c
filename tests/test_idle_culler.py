"""The idle culler stops a notebook server that has been idle for `hub.idle_timeout`.

Live, on the local target: a real JupyterHub with the rendered culler service, a real
notebook server, and no activity after it starts. The timeout is short (20s) so the
test waits about a minute, not an hour.
"""

from __future__ import annotations

import time

import pytest

from tests.support.local_platform import local_platform

pytestmark = pytest.mark.slow

CONFIG = """\
apiVersion: graticule/v1
name: culltest
target: local
hub:
  auth: {provider: local}
  default_profile: small
  idle_timeout: 20s
groups:
  ocean: {budget: ocean, profiles: [small], environments: [default]}
users:
  - {name: alice, groups: [ocean]}
budgets:
  ocean: {monthly_usd: 10}
profiles:
  small: {cpu: 1, memory: 1GiB}
dask:
  default_profile: small
environments:
  default: {python: "3.11", packages: ["dask[distributed]==2026.8.0"]}
"""


def test_an_idle_notebook_server_is_stopped(tmp_path):
    with local_platform(CONFIG, tmp_path) as lp:
        token = lp.token("alice")
        lp.start_server("alice", token, profile="small")
        pid = lp.server_pid("alice")
        assert pid, "alice's server did not start"
        # The culler checks every 30 s (its floor); allow a few rounds on a slow machine.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            servers = lp.hub_api("GET", "/users/alice", token).json()["servers"]
            if not servers:
                break
            time.sleep(2)
        assert not lp.hub_api("GET", "/users/alice", token).json()["servers"], "idle server was not culled"
        assert lp.server_pid("alice") is None
        assert "Culling server alice" in lp.log_tail("hub", 2000), "the server stopped, but not by the culler"

"""End to end on the local target: `platform up` (real JupyterHub, graticule's rendered
dask-gateway configuration and backend), real schedulers and workers, and the
`dask_gateway` client with users' hub tokens.

One platform for the whole module (it is the expensive part); `local_platform` runs
`platform down` at the end and checks by PID that no process is left, detached cluster
processes included.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from dask_gateway import Gateway, GatewayCluster

from tests.support.local_platform import LocalPlatform, local_platform
from tests.support.procs import alive

pytestmark = pytest.mark.slow

PLATFORM = """\
apiVersion: graticule/v1
name: gwtest
target: local
hub:
  auth: {provider: local}
  default_profile: small
groups:
  admins: {admin: true}
  ocean: {budget: lab, profiles: [small, large], environments: [default]}
  students: {budget: lab, profiles: [small], environments: [default]}
users:
  - {name: alice, groups: [admins, ocean]}
  - {name: bob, groups: [students]}
  - {name: carol, groups: [ocean]}
budgets:
  lab: {monthly_usd: 1000}
profiles:
  small: {cpu: 2, memory: 3GiB}
  large: {cpu: 4, memory: 6GiB}
dask:
  default_profile: small
  max_workers: 2
  idle_timeout: 1h
  max_lifetime: 24h
environments:
  default: {python: "3.11", packages: ["dask[distributed]==2026.8.0"]}
"""

CAROL = "  - {name: carol, groups: [ocean]}\n"
WITH_DAVE = PLATFORM.replace(CAROL, CAROL + "  - {name: dave, groups: [students]}\n")


@pytest.fixture(scope="module")
def lp(tmp_path_factory) -> Iterator[LocalPlatform]:
    """`platform up` on PLATFORM; `platform down` and PID checks at the end."""
    with local_platform(PLATFORM, tmp_path_factory.mktemp("gateway")) as handle:
        yield handle


@pytest.fixture(scope="module")
def gateway_for(lp) -> Callable[[str], Gateway]:
    """A `dask_gateway.Gateway` for a user: the hub URL's gateway, auth='jupyterhub' with
    the user's hub API token (one token per user, from `platform token`)."""
    tokens: dict[str, str] = {}

    def connect(user: str) -> Gateway:
        if user not in tokens:
            tokens[user] = lp.token(user)
        return lp.gateway(user, token=tokens[user])

    return connect


def _cluster_pids(state: Path, cluster: str = "*") -> set[int]:
    """PIDs of the schedulers and workers the gateway has started and not yet stopped."""
    pids = set()
    for record in (state / "gateway" / "pids").glob(f"{cluster}.*.json"):
        with contextlib.suppress(ValueError, OSError):
            pids.add(json.loads(record.read_text())["pid"])
    return pids


def _wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def alice_cluster(gateway_for) -> Iterator[GatewayCluster]:
    gateway = gateway_for("alice")
    cluster = gateway.new_cluster(profile="small", workers=1)
    try:
        yield cluster
    finally:
        with contextlib.suppress(Exception):  # the platform fixture stops what is left
            cluster.shutdown()
            gateway.close()


def _worker_info(cluster: GatewayCluster) -> list[dict]:
    with cluster.get_client(set_as_default=False) as client:
        client.wait_for_workers(1, timeout=120)
        return list(client.scheduler_info()["workers"].values())


def test_alice_computes_on_workers_sized_by_her_profile(alice_cluster):
    with alice_cluster.get_client(set_as_default=False) as client:
        client.wait_for_workers(1, timeout=120)
        assert client.submit(sum, range(101)).result(timeout=60) == 5050
    workers = _worker_info(alice_cluster)
    assert [w["nthreads"] for w in workers] == [2]
    assert [w["memory_limit"] for w in workers] == [3 * 2**30]


def test_bob_cannot_see_connect_scale_or_stop_alices_cluster(lp, gateway_for, alice_cluster):
    bob = gateway_for("bob")
    try:
        assert alice_cluster.name not in [c.name for c in bob.list_clusters()]
        for attempt in (
            lambda: bob.connect(alice_cluster.name),
            lambda: bob.scale_cluster(alice_cluster.name, 2),
            lambda: bob.stop_cluster(alice_cluster.name),
        ):
            with pytest.raises(aiohttp.ClientResponseError) as refused:
                attempt()
            assert refused.value.status == 403
    finally:
        bob.close()
    alice = gateway_for("alice")
    try:
        assert alice.get_cluster(alice_cluster.name).status.name == "RUNNING"
    finally:
        alice.close()


def test_profile_not_granted_is_refused_with_the_reason(gateway_for):
    bob = gateway_for("bob")
    try:
        with pytest.raises(ValueError, match=r"profile 'large' is not granted to user 'bob'.*small"):
            bob.submit(profile="large")
        with pytest.raises(ValueError, match=r"profile 'gpu' is not granted"):
            bob.submit(profile="gpu")
        assert bob.list_clusters() == []
    finally:
        bob.close()


def test_max_workers_is_enforced(lp, gateway_for, alice_cluster):
    alice = gateway_for("alice")
    try:
        with pytest.raises(ValueError, match=r"at most 2 workers per cluster"):
            alice.submit(profile="small", workers=3)
    finally:
        alice.close()
    gateway_log = lp.state_dir / "logs" / "gateway.log"
    logged_before = gateway_log.stat().st_size
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        alice_cluster.scale(5)
    assert any("exceed resource limit of 2 workers" in str(w.message) for w in caught)
    with alice_cluster.get_client(set_as_default=False) as client:
        client.wait_for_workers(2, timeout=120)
        # The gateway starts workers only on a scheduler heartbeat whose count exceeds the
        # workers it has: one processed after the scale that says count 2 with 2 running is
        # the decision that no third worker comes (the count changes only by a new scale).
        settled = f"Cluster {alice_cluster.name} heartbeat [count: 2, n_active: 2,"
        _wait_for(lambda: settled in gateway_log.read_bytes()[logged_before:].decode(errors="replace"), 120)
        assert len(client.scheduler_info()["workers"]) == 2
        assert len(_cluster_pids(lp.state_dir, alice_cluster.name)) == 3  # scheduler and two workers
    alice_cluster.scale(1)
    _wait_for(lambda: len(_cluster_pids(lp.state_dir, alice_cluster.name)) == 2)


def test_admin_lists_everyone_but_gets_no_credentials(lp, gateway_for, alice_cluster):
    bob = gateway_for("bob")
    carol = gateway_for("carol")
    alice = gateway_for("alice")
    try:
        bobs = bob.submit(profile="small")  # pending is enough to be listed
        assert [c.name for c in bob.list_clusters()] == [bobs]
        assert alice_cluster.name not in [c.name for c in carol.list_clusters()]
        listed = {c.name: c for c in alice.list_clusters()}
        assert {bobs, alice_cluster.name} <= set(listed)
        assert listed[bobs].tls_key is None  # may see it, may not connect to it
        with pytest.raises(aiohttp.ClientResponseError) as refused:
            alice.connect(bobs)
        assert refused.value.status == 403
        bob.stop_cluster(bobs)
    finally:
        for gateway in (alice, bob, carol):
            gateway.close()


def _gateway_pid(lp) -> int:
    components = lp.status()["components"]
    return next(c["pid"] for c in components if c["name"] == "gateway")


def test_clusters_survive_a_gateway_restart_by_re_up(lp, gateway_for, alice_cluster):
    before = _cluster_pids(lp.state_dir, alice_cluster.name)
    assert len(before) == 2  # scheduler and one worker
    gateway_before = _gateway_pid(lp)
    lp.up(WITH_DAVE)  # a changed platform.json: the gateway restarts
    assert _gateway_pid(lp) != gateway_before
    assert all(alive(pid) for pid in before)
    alice = gateway_for("alice")
    try:
        assert alice.get_cluster(alice_cluster.name).status.name == "RUNNING"
        with alice.connect(alice_cluster.name) as again, again.get_client(set_as_default=False) as client:
            client.wait_for_workers(1, timeout=120)
            assert client.submit(lambda x: x + 1, 41).result(timeout=60) == 42
    finally:
        alice.close()
    dave = gateway_for("dave")  # the new user is known to the restarted gateway
    try:
        with pytest.raises(ValueError, match="profile 'large' is not granted to user 'dave'"):
            dave.submit(profile="large")
    finally:
        dave.close()


SHORT_LIMITS = WITH_DAVE.replace("idle_timeout: 1h\n  max_lifetime: 24h", "idle_timeout: 5s\n  max_lifetime: 20s")


def _status(gateway: Gateway, name: str) -> str:
    return gateway.get_cluster(name).status.name


def test_idle_timeout_and_max_lifetime_stop_clusters(lp, gateway_for):
    """Last in the module: it re-applies the platform with limits of a few seconds."""
    lp.up(SHORT_LIMITS)
    carol = gateway_for("carol")
    busy = None
    try:
        idle = carol.submit(profile="small")
        busy = carol.new_cluster(profile="small", workers=1)
        with busy.get_client(set_as_default=False) as client:
            # A task waiting for a worker or running on one keeps the scheduler from idling, so only
            # the lifetime can stop this cluster. Not waiting for the worker keeps the test free of
            # a race between a slow worker start and the 20 s lifetime on a loaded machine.
            running = client.submit(time.sleep, 300)
            _wait_for(lambda: _status(carol, idle) == "STOPPED", timeout=120)
            _wait_for(lambda: _status(carol, busy.name) == "STOPPED", timeout=120)
            assert running.status != "finished"  # stopped while still working
        scheduler_log = lp.state_dir / "gateway" / "logs" / idle / "scheduler.log"
        assert "Cluster has been idle" in scheduler_log.read_text()
        # the whole log: heartbeats can push the line out of any fixed tail on a busy machine
        assert f"Cluster {busy.name} reached max lifetime" in lp.log_tail("gateway", 1_000_000)
    finally:
        if busy is not None:
            # The gateway stopped it; let go of the client side now, not in a finalizer
            # that would try to stop it again once the platform is down.
            busy.close(shutdown=False)
        carol.close()

"""A spot worker reclaimed with EC2's two-minute notice, end to end on the simulated cloud
(the session's `aws_platform`, with tiny environments: `aws_tiny` of tests/support/cloud_fixtures.py).

alice, from a laptop process, starts a cluster of the `large` profile (spot: the machines
layer asks for spot in RunInstances) with two workers, scatters data over them (no task
could recompute it) and persists a computed dataset, both published so the scheduler keeps
them between the laptop's steps. The simulator then interrupts the spot instance of the
worker holding most keys (`Simulator.interrupt_spot`: the notice in its metadata, its
termination 120 s later, as EC2 does). The worker's preload (deploy/gateway/spot_notice.py)
sees the notice and retires the worker: every key is afterwards held by another worker
(the scattered ones too, so they moved), each result was computed once, the gateway starts
a replacement instance whose worker joins, and the cluster computes on every worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.aws_platform import AwsPlatform
from tests.support.cloud_e2e import WAIT, aws_diagnosis, aws_instances, aws_tags, eventually
from tests.support.hub_e2e import PASSWORDS, Session
from tests.support.laptop import on_laptop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

LAPTOP_SPOT = Path(__file__).parent / "support" / "laptop_spot.py"
NOTICE_SECONDS = 120.0  # EC2's


def _spot_step(python: Path, config: Path, *step: str, **env: str) -> dict:
    """One step of tests/support/laptop_spot.py, away from the repository (as on_laptop)."""
    return on_laptop(python, config, *step, script=LAPTOP_SPOT, timeout=1200, **env)


def _clusters_of(platform: AwsPlatform, user: str) -> set[str]:
    return {aws_tags(i).get("cluster", "") for i in aws_instances(platform, user=user)} - {""}


def _workers(platform: AwsPlatform, cluster: str) -> dict[str, dict]:
    return {i["InstanceId"]: i for i in aws_instances(platform, cluster) if aws_tags(i)["role"] == "worker"}


def test_a_reclaimed_spot_worker_hands_over_its_data_and_is_replaced(aws_tiny: AwsPlatform, laptop, tmp_path):
    platform, sim = aws_tiny, aws_tiny.sim
    config = tmp_path / "laptop-config"
    config.mkdir()
    here = {"GRATICULE_GATEWAY_SCHEDULER_URL": platform.scheduler, "LAPTOP_WAIT": str(WAIT)}
    assert Session(platform.front, "alice").login().status_code == 302  # a first login sets her password
    on_laptop(laptop, config, "login", platform.front, "alice", stdin=PASSWORDS["alice"] + "\n", **here)
    before = _clusters_of(platform, "alice")
    name = None
    try:
        name = _spot_step(laptop, config, "start", "large", "2", **here)["name"]
        workers = _workers(platform, name)
        assert len(workers) == 2, aws_diagnosis(platform, name)
        assert all(w.get("InstanceLifecycle") == "spot" for w in workers.values())

        held = _spot_step(laptop, config, "persist", name, **here)["held"]
        victim_address = max(held, key=held.get)
        victim_ip = victim_address.split("://", 1)[1].rsplit(":", 1)[0]
        (victim,) = [i for i, w in workers.items() if w["PrivateIpAddress"] == victim_ip]
        assert held[victim_address] > 0

        sim.interrupt_spot(victim, notice_seconds=NOTICE_SECONDS)
        replacements = eventually(lambda: set(_workers(platform, name)) - set(workers), WAIT,
                                  lambda: "no replacement for the interrupted worker\n" + aws_diagnosis(platform, name))
        sim.wait_stopped(victim, timeout=NOTICE_SECONDS + 300)  # retired, then ended (by the gateway or EC2)
        console = (sim.workdir / victim / "console.log").read_text(errors="replace")
        assert "spot interruption notice" in console, console[-4000:]

        checked = _spot_step(laptop, config, "check", name, victim_address, "2", **here)
        assert checked["gone_still_there"] is False
        assert victim_address not in {a for holders in checked["holders"].values() for a in holders}
        assert all(checked["holders"].values()), checked["holders"]  # every key, the scattered ones too
        assert checked["intact"] is True
        assert set(checked["computed"].values()) == {1}  # moved, never recomputed
        assert set(checked["ran"].values()) == {45} and len(checked["ran"]) == 2
        now = _workers(platform, name)
        assert victim not in now and set(replacements) <= set(now)
        assert sorted(checked["hosts"]) == sorted(w["PrivateIpAddress"] for w in now.values())

        on_laptop(laptop, config, "stop", name, **here)
        eventually(lambda: not aws_instances(platform, name), 300, lambda: f"instances of {name} left running")
    except BaseException:
        print(aws_diagnosis(platform, name))
        # a failed test leaves no cluster behind, also one whose start failed before it was named
        for started in _clusters_of(platform, "alice") - before:
            on_laptop(laptop, config, "stop", started, **here)
            eventually(lambda started=started: not aws_instances(platform, started), 300,
                       lambda started=started: f"{started} left instances")
        raise

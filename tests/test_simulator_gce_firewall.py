"""The rendered GCP firewall as nft rules (pure), and enforced in the GCE simulator: the hub
only from the load balancer's range and the workers, workers from the hub and each other,
nothing else in."""

from __future__ import annotations

import json
import urllib.request

import pytest

from render.terraform_gcp import synthesize_gcp
from tests.support.gce.server import running_fake_compute
from tests.support.simulator import simulator_unavailable
from tests.support.simulator.gce_firewall import Member, Rule, ingress_rules, rules_from_stack, ruleset
from tests.support.simulator.gce_probes import insert_instance, make_subnetwork
from tests.support.simulator.gce_simulator import GceSimulator
from tests.support.simulator.probes import connect, wait_listening
from tests.support.terraform import example_platform

PROJECT = "oceanlab-prod"
HUB_TAG, WORKER_TAG = "oceanlab-hub", "oceanlab-worker"


@pytest.fixture(scope="module")
def stack() -> dict:
    return json.loads(synthesize_gcp(example_platform("gcp")))


def test_the_rendered_rules_in_evaluation_order(stack):
    rules = rules_from_stack(stack, PROJECT)
    assert {r.name for r in rules} >= {"oceanlab-lb-to-hub", "oceanlab-deny-ingress"}
    assert all(r.name != "oceanlab-deny-egress" for r in rules)  # egress is not modelled
    members = [Member("10.50.0.2", (HUB_TAG,), ""), Member("10.50.0.3", (WORKER_TAG,), ""),
               Member("10.50.0.4", (), "")]
    hub = ingress_rules(rules, (HUB_TAG,), "", members)
    assert "ip saddr 35.191.0.0/16 meta l4proto tcp tcp dport { 8000, 8786 } accept" in hub
    assert "ip saddr 10.50.0.3 meta l4proto tcp tcp dport { 8000 } accept" in hub  # a worker, by its tag
    assert hub[-1] == "ip saddr 0.0.0.0/0 drop"  # priority 65534: after every allow
    worker = ingress_rules(rules, (WORKER_TAG,), "", members)
    assert "ip saddr 10.50.0.2 meta l4proto tcp accept" in worker and "10.50.0.4" not in " ".join(worker)
    assert ingress_rules(rules, (), "", members) == ["ip saddr 0.0.0.0/0 drop"]


def test_priority_then_deny_before_allow_and_accounts():
    rules = [Rule("late-allow", 2000, True, (("tcp", ("22",)),), source_ranges=("10.0.0.0/8",)),
             Rule("deny", 1000, False, ((None, ()),), source_ranges=("10.9.0.0/16",)),
             Rule("allow-same", 1000, True, (("udp", ("53", "60-70")),), source_accounts=("a@p.iam",),
                  target_accounts=("b@p.iam",))]
    members = [Member("10.1.0.5", (), "a@p.iam")]
    assert ingress_rules(rules, (), "b@p.iam", members) == [
        "ip saddr 10.9.0.0/16 drop", "ip saddr 10.1.0.5 meta l4proto udp udp dport { 53, 60-70 } accept",
        "ip saddr 10.0.0.0/8 meta l4proto tcp tcp dport { 22 } accept"]
    assert ingress_rules(rules, (), "c@p.iam", members)[0] == "ip saddr 10.9.0.0/16 drop"  # not a target of allow-same
    script = ruleset(rules, (), "", members)
    assert script.index("delete table inet sim_gce_firewall") < script.index("policy drop;")


SERVE = "#!/bin/sh\ncd /tmp && nohup python3 -m http.server {port} >/var/log/http.log 2>&1 &\n"


@pytest.mark.slow
@pytest.mark.skipif(simulator_unavailable() is not None, reason=simulator_unavailable() or "")
def test_the_simulator_enforces_the_rendered_firewall(stack, tmp_path):
    hub_name = stack["resource"]["google_compute_instance"]["hub"]["name"]
    with running_fake_compute(PROJECT) as compute, GceSimulator(compute, tmp_path / "sim") as sim:
        subnetwork = make_subnetwork(compute, "10.50.0.0/20")
        sim.firewall(stack)
        door = sim.front_door(stack)
        insert_instance(compute, hub_name, subnetwork, SERVE.format(port=8000), tags=(HUB_TAG,))
        for name in ("worker-1", "worker-2"):
            insert_instance(compute, name, subnetwork, SERVE.format(port=8786), tags=(WORKER_TAG,))
        insert_instance(compute, "stranger", subnetwork, SERVE.format(port=8786))
        hub, w1, w2, stranger = (sim.wait_running(n) for n in (hub_name, "worker-1", "worker-2", "stranger"))
        wait_listening(hub, 8000)
        for box in (w1, w2, stranger):
            wait_listening(box, 8786)

        assert urllib.request.urlopen(f"{door.url(443)}/", timeout=10).status == 200  # from Google's front end
        assert connect(w1, hub.ip, 8000) == "open"        # workers to the hub's port
        assert connect(hub, w1.ip, 8786) == "open"        # the hub to its workers
        assert connect(w2, w1.ip, 8786) == "open"         # workers to each other
        assert connect(stranger, hub.ip, 8000, timeout=2) == "timeout"   # untagged: dropped
        assert connect(stranger, w1.ip, 8786, timeout=2) == "timeout"
        assert connect(hub, stranger.ip, 8786, timeout=2) == "timeout"   # the implied deny
        assert connect(w1, stranger.ip, 8786, timeout=2) == "timeout"
        assert connect(hub, "169.254.169.254", 80) == "open"  # the metadata server, always

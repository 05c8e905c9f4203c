"""Dask clusters on their own Compute Engine instances, end to end, on the simulated GCP (the
session's `gcp_platform`: the hub booted from its startup script by the GCE simulator, the
rendered stack made in the fakes; tests/support/gcp_platform.py).

The platform's environments are made tiny (the platform's own packages, locked offline from
this machine's installed wheels) and applied: apply publishes their wheels to the artifacts
bucket. Then alice, from a laptop process (the SDK only, through the rendered load balancer:
443 for the gateway's API, the TCP proxy's 8786 for the schedulers' TLS), starts
`Cluster(profile="small", n_workers=2)`:

- the fake Compute API shows three instances from the small instance template, labelled
  with alice, her cluster and her budget; their startup scripts hold none of the cluster's
  credentials, which are in a Secret Manager secret that names exactly those instances;
- each instance booted (its startup script: an identity token to the hub's broker for the
  secret, the environment from the wheel cache with uv, then the scheduler or the worker
  launcher), and the computation runs on the workers, in their sandboxes;
- `scale(4)` adds two instances (bulkInsert);
- bob can neither list, get, scale nor stop it, and his own machine's identity token does not
  read alice's secret from the broker (his own, it does);
- closing the cluster deletes every instance and its secret;
- the gateway SIGKILLed on the hub VM while a cluster runs, then started again: the cluster is
  adopted and computes again, nothing is launched twice (the fake's insert and bulkInsert
  requests counted) and its usage intervals go on (the same rows, still open).

The platform is then re-applied as it was.
"""

from __future__ import annotations

import contextlib
import json

import pytest
import requests

from render.gateway_config import gateway_spec
from render.validate import validate_text
from tests.support.bootstrap import NAME
from tests.support.cloud_e2e import eventually, gateway_up, gcp_diagnosis, gcp_instances, hub_box, laptop_steps
from tests.support.gcp_platform import GcpPlatform
from tests.support.hub_e2e import PASSWORDS, Session
from tests.support.hub_vm import intervals, kill_gateway, start_gateway

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

BOB_PASSWORD = "bob-Secret-1"
LAUNCHES = ("compute.instances.insert", "compute.instances.bulkInsert")
METADATA = "http://169.254.169.254/computeMetadata/v1"


def _startup_script(instance: dict) -> str:
    return {item["key"]: item["value"] for item in instance["metadata"]["items"]}.get("startup-script", "")


def _launch_requests(platform: GcpPlatform) -> list[dict]:
    return [r for method in LAUNCHES for r in platform.compute.calls(method)]


def _labels(request: dict) -> dict:
    body = request["body"]
    return (body.get("instanceProperties") or body)["labels"]


def _cluster_launches(platform: GcpPlatform, cluster: str) -> list[dict]:
    # by label, not by position: the fake keeps one list per method, and earlier modules on
    # the shared platform leave bulkInserts behind, so a slice of the joined lists drops inserts
    return [r for r in _launch_requests(platform) if _labels(r).get("cluster") == cluster]


def _template_of(request: dict) -> str:
    if request["id"] == "compute.instances.insert":
        return request["query"]["sourceInstanceTemplate"][0]
    return request["body"]["sourceInstanceTemplate"]


def _workers_in_sandboxes(platform: GcpPlatform, names: list[str]) -> bool:
    for name in names:
        boxes = platform.sim.booted(name)
        if not boxes or boxes[-1].exec(["pgrep", "-f", "distributed.cli.dask_worker"]).returncode != 0:
            return False
    return True


def _broker_answer(platform: GcpPlatform, machine: str, key: str) -> int:
    """The HTTP status the broker gives `machine`, asking with its own identity token for `key`."""
    box = platform.sim.booted(machine)[-1]
    hub_ip = hub_box(platform).ip
    script = (f'token=$(curl -fsS -H "Metadata-Flavor: Google" "{METADATA}/instance/service-accounts/default/'
              f'identity?audience=graticule:{NAME}:machine-secrets&format=full") && '
              f'curl -sS -o /dev/null -w "%{{http_code}}" -H "Authorization: Bearer $token" '
              f'"http://{hub_ip}:8000/services/dask-gateway/api/graticule/v1/machine-secret/{key}"')
    done = box.exec(["sh", "-c", script])
    assert done.returncode == 0, done.stdout + done.stderr
    return int(done.stdout.strip())


def test_alice_runs_a_cluster_on_instances_that_bob_cannot_touch(gcp_tiny: GcpPlatform, laptop, tmp_path):
    platform, front = gcp_tiny, gcp_tiny.front
    assert platform.scheduler.startswith("tls://127.0.0.1:")  # the rendered TCP proxy on 8786
    budget = gateway_spec(validate_text(platform.text), "gcp").users["alice"].budget
    assert budget
    config = tmp_path / "laptop-config"
    config.mkdir()
    laptop_step = laptop_steps(platform, laptop, config)

    assert Session(front, "alice").login().status_code == 302  # her first login sets her password
    laptop_step("login", front, "alice", stdin=PASSWORDS["alice"] + "\n")
    name = bob_cluster = None
    bob = Session(front, "bob")
    assert bob.login(BOB_PASSWORD).status_code == 302
    bob_headers = {"Authorization": f"jupyterhub {bob.new_token()}"}  # dask-gateway's JupyterHub auth
    api = f"{front}/services/dask-gateway/api/v1/clusters"
    try:
        try:
            started = laptop_step("start")
        except AssertionError:
            print(gcp_diagnosis(platform))
            raise
        name = started["name"]
        assert started["sum"] == sum(range(100)) and started["workers"] == 2

        # three instances from the small template, labelled for alice, her cluster and her budget
        instances = gcp_instances(platform, name)
        assert len(instances) == 3, gcp_diagnosis(platform, name)
        assert sorted(i["labels"]["role"] for i in instances) == ["scheduler", "worker", "worker"]
        for instance in instances:
            labels = instance["labels"]
            assert (labels["user"], labels["cluster"], labels["budget"], labels["platform"]) == (
                "alice", name, budget, NAME)
            assert "BEGIN" not in _startup_script(instance)  # no key, no certificate
        launches = _cluster_launches(platform, name)
        # workers go out through bulkInsert, the scheduler through insert. How many batches is
        # timing: the gateway gathers the starts that come within 0.2 s, and loaded CI runs
        # split them or started a worker again (tests/test_gateway_aws_machines.py pins the batching)
        roles = {(r["id"], _labels(r)["role"]) for r in launches}
        expected = {("compute.instances.insert", "scheduler"), ("compute.instances.bulkInsert", "worker")}
        assert roles == expected, launches
        assert {_template_of(r).rsplit("/", 1)[1] for r in launches} == {f"{NAME}-small"}
        secret_id = f"graticule-{NAME}-machines-cluster-{name}"
        secret = platform.secret_manager.secrets[secret_id]
        # the broker gives it to the instances labelled with its cluster: nothing listed per machine
        assert secret["labels"]["cluster"] == name and not secret.get("annotations")
        token = json.loads(platform.secret_manager.versions[secret_id][-1]["data"])["env"]["DASK_GATEWAY_API_TOKEN"]
        assert all(token not in _startup_script(i) for i in instances)

        # the computation ran on the worker instances, in their sandboxes
        workers = [i["name"] for i in instances if i["labels"]["role"] == "worker"]
        assert _workers_in_sandboxes(platform, workers), gcp_diagnosis(platform, name)

        # scale(4): two more instances, four workers at the worker instances' addresses
        scaled = laptop_step("scale", name, "4")
        assert scaled["sum"] == sum(range(10))
        workers = [i for i in gcp_instances(platform, name) if i["labels"]["role"] == "worker"]
        assert len(workers) == 4
        assert sorted(scaled["hosts"]) == sorted(i["networkInterfaces"][0]["networkIP"] for i in workers)

        # bob: not listed, not readable, not scalable, not stoppable
        listed = requests.get(f"{api}/", headers=bob_headers, timeout=60)
        assert listed.status_code == 200 and name not in listed.json()
        assert requests.get(f"{api}/{name}", headers=bob_headers, timeout=60).status_code in (403, 404)
        assert requests.delete(f"{api}/{name}", headers=bob_headers, timeout=60).status_code in (403, 404)
        assert requests.post(f"{api}/{name}/scale", json={"count": 0}, headers=bob_headers,
                             timeout=60).status_code in (403, 404)
        assert len(gcp_instances(platform, name)) == 5

        # bob's own machine: its identity token reads his cluster's secret, not alice's
        made = requests.post(f"{api}/", json={"cluster_options": {"profile": "small"}}, headers=bob_headers,
                             timeout=120)
        assert made.status_code == 201, made.text
        bob_cluster = made.json()["name"]
        (bob_machine,) = eventually(lambda: [i["name"] for i in gcp_instances(platform, bob_cluster)], 300,
                                    lambda: "bob's scheduler instance was not launched")
        platform.sim.wait_running(bob_machine, timeout=300)
        mine, alices = f"cluster-{bob_cluster}", f"cluster-{name}"
        eventually(lambda: _broker_answer(platform, bob_machine, mine) == 200, 120,
                   lambda: "bob's machine never read its own secret\n" + gcp_diagnosis(platform, bob_cluster))
        assert _broker_answer(platform, bob_machine, alices) == 403
        assert _broker_answer(platform, bob_machine, "cluster-nosuch") == 404
        assert requests.delete(f"{api}/{bob_cluster}", headers=bob_headers, timeout=60).status_code == 204
        eventually(lambda: not gcp_instances(platform, bob_cluster), 300, lambda: "bob's instance left running")
        bob_cluster = None

        laptop_step("stop", name)
        eventually(lambda: not gcp_instances(platform, name), 300,
                   lambda: f"instances of {name} left running\n" + gcp_diagnosis(platform, name))
        eventually(lambda: secret_id not in platform.secret_manager.secrets, 120,  # deleted after the instances
                   lambda: f"the secret {secret_id} outlived its cluster")
        name = None
    finally:
        if bob_cluster is not None:
            requests.delete(f"{api}/{bob_cluster}", headers=bob_headers, timeout=60)
            eventually(lambda: not gcp_instances(platform, bob_cluster), 300, lambda: f"{bob_cluster} left instances")
        if name is not None:  # a failed test leaves no cluster behind
            print(gcp_diagnosis(platform, name))
            with contextlib.suppress(AssertionError):  # stopped already: the failure came after
                laptop_step("stop", name)
            eventually(lambda: not gcp_instances(platform, name), 300, lambda: f"{name} left instances")


def test_a_gateway_killed_on_the_hub_vm_adopts_the_running_cluster_which_keeps_computing(
        gcp_tiny: GcpPlatform, laptop, tmp_path):
    platform = gcp_tiny
    config = tmp_path / "laptop-config"
    config.mkdir()
    laptop_step = laptop_steps(platform, laptop, config)
    assert Session(platform.front, "alice").login().status_code == 302
    laptop_step("login", platform.front, "alice", stdin=PASSWORDS["alice"] + "\n")
    name = None
    try:
        try:
            started = laptop_step("start")  # Cluster(profile="small", n_workers=2), computed on, left running
        except AssertionError:
            print(gcp_diagnosis(platform))
            raise
        name = started["name"]
        assert started["sum"] == sum(range(100)) and started["workers"] == 2
        before = {i["name"] for i in gcp_instances(platform, name)}
        assert len(before) == 3
        rows = eventually(lambda: (found if len(found := [r for r in intervals(platform, name)
                                                          if r["machine_id"]]) == 3 else None), 120,
                          lambda: "the intervals never knew their instances\n" + gcp_diagnosis(platform, name))
        assert {r["machine_id"] for r in rows} == before
        launches = len(_launch_requests(platform))

        kill_gateway(platform)
        start_gateway(platform)
        eventually(lambda: gateway_up(platform), 300, lambda: "the restarted gateway did not answer\n"
                   + gcp_diagnosis(platform, name))

        again = laptop_step("compute", name)  # reconnected by name: the same scheduler, through the new proxy
        assert again["sum"] == sum(range(10))
        assert {i["name"] for i in gcp_instances(platform, name)} == before  # nothing launched again
        assert len(_launch_requests(platform)) == launches
        after = intervals(platform, name)
        assert sorted((r["id"], r["machine_id"]) for r in after) == sorted((r["id"], r["machine_id"]) for r in rows)
        assert all(r["ended_at"] is None for r in after)  # the same intervals go on, none doubled

        laptop_step("stop", name)
        eventually(lambda: not gcp_instances(platform, name), 300, lambda: "the cluster's instances stayed")
        eventually(lambda: all(r["ended_at"] for r in intervals(platform, name)), 120,
                   lambda: "the intervals never closed")
        name = None
    finally:
        if name is not None:  # a failed test leaves no cluster behind
            print(gcp_diagnosis(platform, name))
            with contextlib.suppress(AssertionError):  # stopped already: the failure came after
                laptop_step("stop", name)
            eventually(lambda: not gcp_instances(platform, name), 300, lambda: f"{name} left instances")

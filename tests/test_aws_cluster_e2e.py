"""Dask clusters on their own EC2 instances, end to end, on the simulated cloud (the session's
`aws_platform`: the hub booted from its user data by the machine simulator, Terraform's
real AWS provider against moto; tests/support/aws_platform.py).

The platform's environments are made tiny (dask, distributed, dask-gateway and ipykernel,
locked offline from this machine's installed wheels) and applied: apply publishes their
wheels to the artifacts bucket. Then alice, from a laptop process (the SDK only, through
the load balancers: the hub's 443 for the gateway's API, the NLB's 8786 for the schedulers'
TLS), starts `Cluster(profile="small", n_workers=2)`:

- moto shows three instances launched from the small launch template, tagged with alice,
  her cluster and her budget; their user data holds none of the cluster's credentials,
  which are in a secret readable only by those instances;
- each instance booted (the simulator runs its user data: secret, environment from the
  wheel cache with uv, then the scheduler or the worker launcher, which asks the gateway
  which worker it is), and the computation runs on the workers at the worker instances'
  addresses, in their sandboxes;
- `scale(4)` adds two instances; a worker instance reclaimed (terminated, as EC2 ends a
  spot instance) is replaced and the cluster computes on four workers again;
- bob can neither see, nor connect to, nor stop it;
- closing the cluster terminates every instance and deletes its secret.

The platform is then re-applied as it was.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from render.gateway_config import gateway_spec
from render.validate import validate_text
from tests.support import environments as support
from tests.support.aws_platform import AwsPlatform
from tests.support.bootstrap import NAME
from tests.support.hub_e2e import PASSWORDS, Session
from tests.support.hub_wheelhouse import hub_wheels
from tests.test_laptop_e2e import on_laptop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

BOB_PASSWORD = "bob-Secret-1"
TINY = '    packages: ["dask[distributed]==2026.8.0"]\n'  # the platform's pins and ipykernel come with it
WAIT = 900  # seconds for machines to boot and connect on a shared machine


def tiny_environments(text: str) -> str:
    """Every environment of platform.yaml with the platform's own packages only."""
    start = text.index("\nenvironments:\n")
    end = re.search(r"\n\S", text[start + 1:]).start() + start + 1
    block = re.sub(r"    packages:\n(      - [^\n]*\n)+", TINY, text[start:end])
    return text[:start] + block + text[end:]


def _eventually(check: Callable[[], object], timeout: float, message: Callable[[], str]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(2)
    raise AssertionError(message())


@pytest.fixture(scope="module")
def laptop(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    with support.wheelhouse_in_use(base):
        venv = support.shared_venv(base, "laptop", ("distributed", "dask-gateway"))
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def tiny(aws_platform: AwsPlatform) -> Iterator[AwsPlatform]:
    """The platform with tiny, locked environments (their wheels published by apply); as it was after."""
    platform, original = aws_platform, aws_platform.text
    lock = platform.root / "environments.lock"
    (platform.root / "platform.yaml").write_text(tiny_environments(original))
    empty_index = platform.root / "empty-index"  # uv reads no UV_NO_INDEX: an index with nothing in it
    empty_index.mkdir(exist_ok=True)
    offline = {"UV_FIND_LINKS": str(hub_wheels()), "UV_INDEX_URL": empty_index.as_uri(), "UV_OFFLINE": "1"}
    try:
        platform.env.update(offline)
        platform.cli("lock")
        platform.apply(tiny_environments(original))
        _wait_for_published_environments(platform)
        yield platform
    finally:
        for key in offline:
            platform.env.pop(key, None)
        lock.unlink(missing_ok=True)
        platform.apply(original)


def _wait_for_published_environments(platform: AwsPlatform) -> None:
    """Until the hub's config sync installed the applied configuration (the environments'
    keys), and the gateway it may have restarted answers again."""
    hub = platform.sim.sandboxes[platform.hub_instance()]

    def installed() -> bool:
        found = hub.exec(["cat", "/var/lib/graticule/build/environments/wheels.json"])
        return found.returncode == 0 and '"default"' in found.stdout

    _eventually(installed, 300, lambda: "the hub never installed the environments' keys\n"
                + platform.diagnose(platform.hub_instance()))
    time.sleep(15)  # config sync restarts the components whose files changed right after the swap

    def gateway_up() -> bool:
        try:
            return requests.get(f"{platform.front}/services/dask-gateway/api/health", timeout=10).ok
        except requests.RequestException:
            return False

    _eventually(gateway_up, 300, lambda: "the gateway did not answer\n" + platform.diagnose(platform.hub_instance()))


def _instances(platform: AwsPlatform, cluster: str) -> list[dict]:
    ec2 = platform.server.client("ec2")
    found = ec2.describe_instances(Filters=[{"Name": "tag:cluster", "Values": [cluster]}])
    return [i for r in found["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] not in ("terminated", "shutting-down")]


def _tags(instance: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def _user_data(platform: AwsPlatform, instance_id: str) -> str:
    return platform.sim.cloud.user_data(instance_id).decode(errors="replace")


def _diagnosis(platform: AwsPlatform, cluster: str | None) -> str:
    parts = [platform.diagnose(platform.hub_instance())[-8000:]]
    for instance in _instances(platform, cluster) if cluster else []:
        parts.append(platform.diagnose(instance["InstanceId"])[-4000:])
    return "\n".join(parts)


def _workers_in_sandboxes(platform: AwsPlatform, instance_ids: list[str]) -> bool:
    for instance_id in instance_ids:
        box = platform.sim.sandboxes.get(instance_id)
        if box is None or box.exec(["pgrep", "-f", "distributed.cli.dask_worker"]).returncode != 0:
            return False
    return True


def test_alice_runs_a_cluster_on_instances_that_bob_cannot_touch(tiny: AwsPlatform, laptop, tmp_path):
    platform, front = tiny, tiny.front
    outputs = platform.outputs()
    budget = gateway_spec(validate_text(platform.text), "aws").users["alice"].budget
    assert budget
    config = tmp_path / "laptop-config"
    config.mkdir()
    here = {"GRATICULE_GATEWAY_SCHEDULER_URL": platform.scheduler, "LAPTOP_WAIT": str(WAIT)}

    def laptop_step(*step: str, stdin: str = "") -> dict:
        return on_laptop(laptop, config, *step, stdin=stdin, **here)

    assert Session(front, "alice").login().status_code == 302  # her first login sets her password
    laptop_step("login", front, "alice", stdin=PASSWORDS["alice"] + "\n")
    name = None
    try:
        started = laptop_step("start")
        name = started["name"]
        assert started["sum"] == sum(range(100)) and started["workers"] == 2

        # three instances from the small template, tagged for alice, her cluster and her budget
        instances = _instances(platform, name)
        assert len(instances) == 3, _diagnosis(platform, name)
        roles = sorted(_tags(i)["role"] for i in instances)
        assert roles == ["scheduler", "worker", "worker"]
        template = outputs["launch_templates"]["small"]["id"]
        for instance in instances:
            tags = _tags(instance)
            assert (tags["user"], tags["cluster"], tags["budget"], tags["platform"]) == (
                "alice", name, budget, NAME)
            assert tags["aws:ec2launchtemplate:id"] == template
            assert "BEGIN" not in _user_data(platform, instance["InstanceId"])  # no key, no certificate
        secrets = platform.server.client("secretsmanager")
        secret = f"graticule/{NAME}/machines/cluster-{name}"
        value = json.loads(secrets.get_secret_value(SecretId=secret)["SecretString"])
        token = value["env"]["DASK_GATEWAY_API_TOKEN"]
        assert all(token not in _user_data(platform, i["InstanceId"]) for i in instances)
        policy = json.loads(secrets.get_resource_policy(SecretId=secret)["ResourcePolicy"])
        readers = policy["Statement"][0]["Condition"]["ArnNotLike"]["ec2:SourceInstanceARN"]
        assert sorted(r.rsplit("/", 1)[1] for r in readers) == sorted(i["InstanceId"] for i in instances)

        # the computation ran on the worker instances, in their sandboxes
        workers = [i for i in instances if _tags(i)["role"] == "worker"]
        assert _workers_in_sandboxes(platform, [i["InstanceId"] for i in workers]), _diagnosis(platform, name)

        # scale(4): two more instances, four workers at the worker instances' addresses
        scaled = laptop_step("scale", name, "4")
        assert scaled["sum"] == sum(range(10))
        workers = [i for i in _instances(platform, name) if _tags(i)["role"] == "worker"]
        assert len(workers) == 4
        assert sorted(scaled["hosts"]) == sorted(i["PrivateIpAddress"] for i in workers)

        # a worker instance reclaimed: replaced, and the cluster computes on four again
        gone = workers[0]["InstanceId"]
        platform.server.client("ec2").terminate_instances(InstanceIds=[gone])
        _eventually(lambda: {i["InstanceId"] for i in _instances(platform, name) if _tags(i)["role"] == "worker"}
                    - {w["InstanceId"] for w in workers}, WAIT, lambda: "no replacement for the reclaimed worker\n"
                    + _diagnosis(platform, name))
        again = laptop_step("scale", name, "4")
        replaced = [i for i in _instances(platform, name) if _tags(i)["role"] == "worker"]
        assert gone not in {i["InstanceId"] for i in replaced} and len(replaced) == 4
        assert sorted(again["hosts"]) == sorted(i["PrivateIpAddress"] for i in replaced)

        # bob: not listed, not readable, not stoppable
        bob = Session(front, "bob")
        assert bob.login(BOB_PASSWORD).status_code == 302
        headers = {"Authorization": f"jupyterhub {bob.new_token()}"}  # dask-gateway's JupyterHub auth
        api = f"{front}/services/dask-gateway/api/v1/clusters"
        listed = requests.get(f"{api}/", headers=headers, timeout=60)
        assert listed.status_code == 200 and name not in listed.json()
        assert requests.get(f"{api}/{name}", headers=headers, timeout=60).status_code in (403, 404)
        assert requests.delete(f"{api}/{name}", headers=headers, timeout=60).status_code in (403, 404)
        assert requests.post(f"{api}/{name}/scale", json={"count": 0}, headers=headers,
                             timeout=60).status_code in (403, 404)
        assert len(_instances(platform, name)) == 5

        laptop_step("stop", name)
        _eventually(lambda: not _instances(platform, name), 300,
                    lambda: f"instances of {name} left running\n" + _diagnosis(platform, name))
        assert secret not in {s["Name"] for s in secrets.list_secrets()["SecretList"]}
        name = None
    finally:
        if name is not None:  # a failed test leaves no cluster behind
            print(_diagnosis(platform, name))
            laptop_step("stop", name)
            _eventually(lambda: not _instances(platform, name), 300, lambda: f"{name} left instances")

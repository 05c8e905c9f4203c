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

import pytest
import requests

from render.gateway_config import gateway_spec
from render.validate import validate_text
from tests.support.aws_platform import AwsPlatform
from tests.support.bootstrap import NAME
from tests.support.cloud_e2e import WAIT, aws_diagnosis, aws_instances, aws_tags, eventually, laptop_steps
from tests.support.hub_e2e import PASSWORDS, Session

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

BOB_PASSWORD = "bob-Secret-1"


def _user_data(platform: AwsPlatform, instance_id: str) -> str:
    return platform.sim.cloud.user_data(instance_id).decode(errors="replace")


def _workers_in_sandboxes(platform: AwsPlatform, instance_ids: list[str]) -> bool:
    for instance_id in instance_ids:
        box = platform.sim.sandboxes.get(instance_id)
        if box is None or box.exec(["pgrep", "-f", "distributed.cli.dask_worker"]).returncode != 0:
            return False
    return True


def test_alice_runs_a_cluster_on_instances_that_bob_cannot_touch(aws_tiny: AwsPlatform, laptop, tmp_path):
    platform, front = aws_tiny, aws_tiny.front
    outputs = platform.outputs()
    budget = gateway_spec(validate_text(platform.text), "aws").users["alice"].budget
    assert budget
    config = tmp_path / "laptop-config"
    config.mkdir()
    laptop_step = laptop_steps(platform, laptop, config)

    assert Session(front, "alice").login().status_code == 302  # her first login sets her password
    laptop_step("login", front, "alice", stdin=PASSWORDS["alice"] + "\n")
    name = None
    try:
        started = laptop_step("start")
        name = started["name"]
        assert started["sum"] == sum(range(100)) and started["workers"] == 2

        # three instances from the small template, tagged for alice, her cluster and her budget
        instances = aws_instances(platform, name)
        assert len(instances) == 3, aws_diagnosis(platform, name)
        roles = sorted(aws_tags(i)["role"] for i in instances)
        assert roles == ["scheduler", "worker", "worker"]
        template = outputs["launch_templates"]["small"]["id"]
        for instance in instances:
            tags = aws_tags(instance)
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
        workers = [i for i in instances if aws_tags(i)["role"] == "worker"]
        assert _workers_in_sandboxes(platform, [i["InstanceId"] for i in workers]), aws_diagnosis(platform, name)

        # scale(4): two more instances, four workers at the worker instances' addresses
        scaled = laptop_step("scale", name, "4")
        assert scaled["sum"] == sum(range(10))
        workers = [i for i in aws_instances(platform, name) if aws_tags(i)["role"] == "worker"]
        assert len(workers) == 4
        assert sorted(scaled["hosts"]) == sorted(i["PrivateIpAddress"] for i in workers)

        # a worker instance reclaimed: replaced, and the cluster computes on four again
        gone = workers[0]["InstanceId"]
        platform.server.client("ec2").terminate_instances(InstanceIds=[gone])
        eventually(lambda: {i["InstanceId"] for i in aws_instances(platform, name) if aws_tags(i)["role"] == "worker"}
                   - {w["InstanceId"] for w in workers}, WAIT, lambda: "no replacement for the reclaimed worker\n"
                   + aws_diagnosis(platform, name))
        again = laptop_step("scale", name, "4")
        replaced = [i for i in aws_instances(platform, name) if aws_tags(i)["role"] == "worker"]
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
        assert len(aws_instances(platform, name)) == 5

        laptop_step("stop", name)
        eventually(lambda: not aws_instances(platform, name), 300,
                   lambda: f"instances of {name} left running\n" + aws_diagnosis(platform, name))
        assert secret not in {s["Name"] for s in secrets.list_secrets()["SecretList"]}
        name = None
    finally:
        if name is not None:  # a failed test leaves no cluster behind
            print(aws_diagnosis(platform, name))
            laptop_step("stop", name)
            eventually(lambda: not aws_instances(platform, name), 300, lambda: f"{name} left instances")

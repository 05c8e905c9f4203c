"""`Cluster(sync=True)` on aws machines, end to end, on the simulated cloud (the session's
`aws_platform`: the hub booted from its user data by the machine simulator, `egress: none`,
Terraform's real AWS provider against moto; tests/support/aws_platform.py).

alice's laptop (a virtual environment with the SDK's requirements and `syncextra`, a small
pure-Python package made here and installed from its wheel: in none of the platform's
environments) starts `Cluster(sync=True, profile="small", n_workers=1)`. The gateway on the
hub VM, which reaches no package index, builds her environment from her wheel and the hub's
wheelhouse, publishes it to `environments/<key>/` of the artifacts bucket, and the
cluster's machines install it from there at boot like a locked one: a task on the worker
imports `syncextra` from that environment. The instances are tagged as for any cluster,
and closing it terminates them and deletes its secret.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from render.gateway_config import gateway_spec
from render.validate import validate_text
from tests.support.aws_platform import AwsPlatform
from tests.support.bootstrap import NAME
from tests.support.cloud_e2e import aws_diagnosis, aws_instances, aws_tags, eventually
from tests.support.laptop import on_laptop
from tests.support.sync_laptop import alice_syncs, assert_synced, stop_left_behind, sync_laptop
from tests.support.vm_gateway import user_data as machine_script

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def laptop(tmp_path_factory) -> Path:
    return sync_laptop(tmp_path_factory.getbasetemp(), "aws-sync")


def _published(platform: AwsPlatform, key: str) -> list[str]:
    s3 = platform.server.client("s3")
    found = s3.list_objects_v2(Bucket=platform.outputs()["artifacts_bucket"], Prefix=f"environments/{key}/")
    return sorted(item["Key"].rsplit("/", 1)[1] for item in found.get("Contents", []))


def test_alice_syncs_her_laptops_package_onto_the_clusters_machines(aws_platform: AwsPlatform, laptop, tmp_path):
    platform = aws_platform
    budget = gateway_spec(validate_text(platform.text), "aws").users["alice"].budget
    run = alice_syncs(platform, laptop, tmp_path)
    name = run.name
    try:
        # the worker ran in the synced environment its machine installed from the bucket
        key = assert_synced(run, partial(_published, platform), lambda: aws_diagnosis(platform, name))

        instances = aws_instances(platform, name)
        assert sorted(aws_tags(i)["role"] for i in instances) == ["scheduler", "worker"], aws_diagnosis(platform, name)
        template = platform.outputs()["launch_templates"]["small"]["id"]
        for instance in instances:
            tags = aws_tags(instance)
            assert (tags["user"], tags["cluster"], tags["budget"], tags["platform"]) == ("alice", name, budget, NAME)
            assert tags["aws:ec2launchtemplate:id"] == template
            _, script = machine_script(platform.server, instance["InstanceId"])
            assert f"ENVIRONMENT={key}\n" in script and "PLATFORM_SOFTWARE=0" in script

        on_laptop(laptop, run.config, "stop", name)
        eventually(lambda: not aws_instances(platform, name), 300,
                   lambda: f"instances of {name} left running\n" + aws_diagnosis(platform, name))
        secrets = platform.server.client("secretsmanager").list_secrets()["SecretList"]
        assert f"graticule/{NAME}/machines/cluster-{name}" not in {s["Name"] for s in secrets}
        run.name = None  # stopped: nothing left behind
    finally:
        stop_left_behind(laptop, run, lambda: aws_instances(platform, name))

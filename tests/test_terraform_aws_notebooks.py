"""The rendered AWS stack's part for notebook servers on their own instances, read without
Terraform: their security group (only the hub's proxy in, only the hub out), the hub
policy's home-volume statements, the outputs the VM spawner reads. Terraform with the
real provider applies the same JSON in tests/test_terraform_aws.py."""

from __future__ import annotations

import json

import pytest

from deploy.cloud.home_volumes import HOME_ROLE
from deploy.cloud.machines import TAG_PLATFORM, TAG_ROLE
from deploy.hub.vm_spawner import HUB_PROXY_PORT, NOTEBOOK_ROLE, SERVER_PORT
from modules.aws.security import NOTEBOOK_PORT
from modules.spec import SCHEDULER_PORT
from render.terraform import synthesize_target
from tests.support.terraform import example_platform

NAME = "oceanlab"
HUB, NOTEBOOKS = "${aws_security_group.hub.id}", "${aws_security_group.notebooks.id}"


@pytest.fixture(scope="module")
def stacks() -> dict[str, dict]:
    found = {}
    for egress in ("nat", "none"):
        (payload,) = synthesize_target(example_platform("aws", egress=egress, existing_bucket=True), "aws").values()
        found[egress] = json.loads(payload)
    return found


def _rules(stack: dict, kind: str, group: str) -> set[tuple]:
    rules = stack["resource"][f"aws_vpc_security_group_{kind}_rule"].values()
    return {(r.get("referenced_security_group_id") or r.get("cidr_ipv4") or r.get("prefix_list_id"),
             r["from_port"], r["to_port"]) for r in rules if r["security_group_id"] == group}


def test_notebook_servers_take_only_the_hub_proxy_and_reach_only_the_hub(stacks):
    assert NOTEBOOK_PORT == SERVER_PORT  # the rule and the spawner agree
    for egress, stack in stacks.items():
        assert _rules(stack, "ingress", NOTEBOOKS) == {(HUB, SERVER_PORT, SERVER_PORT)}
        out = _rules(stack, "egress", NOTEBOOKS)
        assert {(HUB, HUB_PROXY_PORT, HUB_PROXY_PORT), (HUB, SCHEDULER_PORT, SCHEDULER_PORT)} <= out
        others = out - {(HUB, HUB_PROXY_PORT, HUB_PROXY_PORT), (HUB, SCHEDULER_PORT, SCHEDULER_PORT)}
        # the rest is AWS's APIs on 443 only: NAT, or the VPC endpoints (egress: none)
        assert others and all(rule[1:] == (443, 443) for rule in others), others
        if egress == "none":
            assert ("${aws_security_group.endpoints.id}", 443, 443) in out
            assert (NOTEBOOKS, 443, 443) in _rules(stack, "ingress", "${aws_security_group.endpoints.id}")
        assert (NOTEBOOKS, HUB_PROXY_PORT, HUB_PROXY_PORT) in _rules(stack, "ingress", HUB)
        assert (NOTEBOOKS, SERVER_PORT, SERVER_PORT) in _rules(stack, "egress", HUB)
        # Dask's machines do not reach notebook servers, nor notebook servers them.
        workers = "${aws_security_group.workers.id}"
        assert not any(rule[0] == workers for rule in _rules(stack, "ingress", NOTEBOOKS))
        assert not any(rule[0] == NOTEBOOKS for rule in _rules(stack, "ingress", workers))


def test_the_hub_may_launch_into_the_notebook_group_and_attach_only_home_volumes_to_notebooks(stacks):
    hub = stacks["none"]["data"]["aws_iam_policy_document"]["hub"]["statement"]
    by_sid = {s["sid"]: s for s in hub}
    assert "${aws_security_group.notebooks.arn}" in by_sid["LaunchFromPlatformTemplates"]["resources"]

    def conditions(sid: str) -> dict[str, list[str]]:
        return {c["variable"]: c["values"] for c in by_sid[sid]["condition"]}

    assert by_sid["CreateHomeVolumes"]["actions"] == ["ec2:CreateVolume"]
    assert conditions("CreateHomeVolumes") == {f"aws:RequestTag/{TAG_PLATFORM}": [NAME],
                                               f"aws:RequestTag/{TAG_ROLE}": [HOME_ROLE]}
    assert conditions("TagHomeVolumesAtCreation") == {"ec2:CreateAction": ["CreateVolume"]}
    assert conditions("AttachHomeVolumes") == {f"aws:ResourceTag/{TAG_PLATFORM}": [NAME],
                                               f"aws:ResourceTag/{TAG_ROLE}": [HOME_ROLE]}
    assert all(r.endswith(":volume/*") for r in by_sid["AttachHomeVolumes"]["resources"])
    assert conditions("AttachToNotebookInstances") == {f"aws:ResourceTag/{TAG_PLATFORM}": [NAME],
                                                       f"aws:ResourceTag/{TAG_ROLE}": [NOTEBOOK_ROLE]}
    assert all(r.endswith(":instance/*") for r in by_sid["AttachToNotebookInstances"]["resources"])
    # Nothing else about volumes: no delete, no detach, no volume of another platform.
    volume_actions = {a for s in hub for a in s["actions"] if "Volume" in a}
    assert volume_actions == {"ec2:CreateVolume", "ec2:AttachVolume", "ec2:DescribeVolumes"}


def test_the_outputs_name_the_notebook_group(stacks):
    outputs = stacks["nat"]["output"]
    assert outputs["security_group_ids"]["value"]["notebooks"] == NOTEBOOKS
    assert outputs["hub_private_ip"]["value"] == "${aws_instance.hub.private_ip}"

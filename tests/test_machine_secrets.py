"""Machines' secrets in Secrets Manager (deploy.cloud.machine_secrets) against a real moto
server: named under `graticule/<platform>/machines/`, encrypted with the platform's key,
tagged, readable (by resource policy) only by the hub's role and the allowed instances,
gone after `delete`. moto does not enforce IAM: the policy documents are checked as written.
"""

from __future__ import annotations

import json

import pytest

from deploy.cloud.machine_secrets import MachineSecrets, policy
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)


@pytest.fixture
def secrets(moto_server):  # noqa: F811
    moto_server.reset()
    return MachineSecrets(moto_server.region, "oceanlab", client=moto_server.client("secretsmanager"))


def _policy(secrets: MachineSecrets, key: str) -> dict:
    return json.loads(secrets.client.get_resource_policy(SecretId=secrets.name(key))["ResourcePolicy"])


def test_put_allow_delete(secrets):
    name = secrets.put("cluster-abc", {"env": {"TOKEN": "s3cr3t"}, "files": {"dask.pem": "KEY"}},
                      tags={"cluster": "abc", "user": "alice"})
    assert name == "graticule/oceanlab/machines/cluster-abc"
    described = secrets.client.describe_secret(SecretId=name)
    assert described["KmsKeyId"] == "alias/graticule-oceanlab"
    assert {t["Key"]: t["Value"] for t in described["Tags"]} == {"platform": "oceanlab", "cluster": "abc",
                                                                  "user": "alice"}
    value = json.loads(secrets.client.get_secret_value(SecretId=name)["SecretString"])
    assert value == {"env": {"TOKEN": "s3cr3t"}, "files": {"dask.pem": "KEY"}}

    (before,) = _policy(secrets, "cluster-abc")["Statement"]
    assert before["Effect"] == "Deny" and before["Action"] == "secretsmanager:GetSecretValue"
    assert before["Condition"]["ArnNotLike"] == {"aws:PrincipalArn": "arn:*:iam::*:role/oceanlab-hub"}

    secrets.allow("cluster-abc", ["i-0b", "i-0a"])
    (after,) = _policy(secrets, "cluster-abc")["Statement"]
    assert after["Condition"]["ArnNotLike"]["ec2:SourceInstanceARN"] == [
        "arn:*:ec2:*:*:instance/i-0a", "arn:*:ec2:*:*:instance/i-0b"]

    secrets.put("cluster-abc", {"env": {"TOKEN": "new"}})  # overwritten in place, policy back to the hub only
    assert json.loads(secrets.client.get_secret_value(SecretId=name)["SecretString"]) == {"env": {"TOKEN": "new"}}
    assert "ec2:SourceInstanceARN" not in _policy(secrets, "cluster-abc")["Statement"][0]["Condition"]["ArnNotLike"]

    secrets.delete("cluster-abc")
    assert secrets.client.list_secrets()["SecretList"] == []
    secrets.delete("cluster-abc")  # idempotent


def test_policy_denies_everyone_else():
    document = policy("p", ["i-1"])
    (statement,) = document["Statement"]
    # one Deny whose conditions are ANDed: only a caller matching neither the hub role nor an
    # allowed instance is denied
    assert statement["Principal"] == "*" and statement["Resource"] == "*"
    assert set(statement["Condition"]["ArnNotLike"]) == {"aws:PrincipalArn", "ec2:SourceInstanceARN"}


def test_the_stack_lets_machines_read_only_machine_secrets_and_wheels_and_the_hub_manage_them(example_text):
    from render.terraform import synthesize_target
    from render.validate import validate_text

    platform = validate_text(example_text.replace("target: local ", "target: aws   "))
    stack = json.loads(synthesize_target(platform, "aws")["terraform/aws/main.tf.json"])
    documents = stack["data"]["aws_iam_policy_document"]
    machines = "arn:aws:secretsmanager:us-west-2:123456789012:secret:graticule/oceanlab/machines/*"
    boots = {k: v for k, v in documents.items() if k.startswith("worker_boot_")}
    assert boots and len(boots) == len([k for k in documents if k.startswith("worker_") and "boot" not in k])
    for document in boots.values():
        statements = {s["sid"]: s for s in document["statement"]}
        assert statements["ReadMachineSecrets"] == {"sid": "ReadMachineSecrets", "resources": [machines],
                                                    "actions": ["secretsmanager:GetSecretValue"]}
        assert statements["ReadWheels"]["actions"] == ["s3:GetObject"]
        assert all(r.startswith("${aws_s3_bucket.artifacts.arn}/") for r in statements["ReadWheels"]["resources"])
        assert {a for s in document["statement"] for a in s["actions"]} == {
            "s3:GetObject", "secretsmanager:GetSecretValue", "kms:Decrypt"}
    hub = {s["sid"]: s for s in documents["hub"]["statement"]}
    assert hub["ManageMachineSecrets"]["resources"] == [machines]
    assert "secretsmanager:DeleteSecret" in hub["ManageMachineSecrets"]["actions"]
    # creating or deleting is allowed on machine secrets only
    assert [s["sid"] for s in hub.values() if {"secretsmanager:CreateSecret", "secretsmanager:DeleteSecret"}
            & set(s["actions"])] == ["ManageMachineSecrets"]
    policies = [v for k, v in stack["resource"]["aws_iam_role_policy"].items() if k.startswith("worker_boot_")]
    assert {p["name"] for p in policies} == {"machine-boot"}

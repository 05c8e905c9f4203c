"""The rendered AWS stack with the real Terraform and the real hashicorp/aws provider.

- `terraform validate` of both egress modes (nat, none) with the provider from the local
  mirror;
- apply -> plan (no changes: detailed exit code 0) -> destroy against a moto server, once
  for this module, for the `egress: none` stack (the one with interface endpoints; the NAT
  resources of `egress: nat` are covered by validate). Endpoints, fake credentials and
  local state come from an override file the test writes, never from the rendered output;
- after apply, moto (read with boto3) holds what the stack promises; after destroy it
  holds none of the platform's resources.

What moto 5.2.1 cannot hold, and how the override works around it, is listed in
tests/support/terraform.py (UNSUPPORTED_BY_MOTO, moto_override): AWS Budgets budgets are
not applied (moto cannot read back their tags or subscribers), so they are checked on
the rendered JSON (tests/test_terraform_aws_rendered.py) and by validate only.
"""

from __future__ import annotations

import json
import shutil

import pytest

from deploy.cloud.aws import AWSMachines
from deploy.cloud.machines import MachineSpec
from deploy.terraform import Terraform
from render.terraform import synthesize_target
from tests.support.moto_server import moto_server  # noqa: F401  (pytest fixture)
from tests.support.terraform import (
    example_platform,
    moto_override,
    moto_targets,
    tf_plugin_dir,  # noqa: F401  (pytest fixture)
)

pytestmark = pytest.mark.slow
NAME = "oceanlab"


def render(egress: str) -> bytes:
    (payload,) = synthesize_target(example_platform("aws", egress=egress, existing_bucket=True), "aws").values()
    return payload


# --- terraform validate with the real provider ------------------------------------------


@pytest.mark.parametrize("egress", ["nat", "none"])
def test_terraform_validate(egress, tmp_path, tf_plugin_dir):  # noqa: F811
    (tmp_path / "main.tf.json").write_bytes(render(egress))
    tf = Terraform(tmp_path, state_dir=tmp_path / ".runner", mirror=tf_plugin_dir)
    tf.init(backend=False)
    assert tf.validate()["valid"] is True


# --- apply -> plan -> destroy against moto -----------------------------------------------


@pytest.fixture(scope="module")
def applied(tmp_path_factory, tf_plugin_dir, moto_server):  # noqa: F811
    workdir = tmp_path_factory.mktemp("aws-stack")
    payload = render("none")
    (workdir / "main.tf.json").write_bytes(payload)
    main = json.loads(payload)
    override = moto_override(main, moto_server.url, workdir / "terraform.tfstate")
    (workdir / "moto_override.tf.json").write_text(json.dumps(override, indent=2))
    tf = Terraform(workdir, state_dir=workdir / ".runner", mirror=tf_plugin_dir)
    targets = moto_targets(main)
    tf.init()
    tf.apply(None, *targets)
    state = {"destroyed": False}
    try:
        yield tf, targets, main, state
    finally:
        if not state["destroyed"]:
            tf.destroy(*targets)
        shutil.rmtree(workdir / ".runner" / "data", ignore_errors=True)


def test_plan_after_apply_has_no_changes(applied):
    tf, targets, _, _ = applied
    plan = tf.plan(*targets)
    assert plan.changes is False, tf.run("show", "-no-color", str(plan.plan_file)).stdout[-4000:]


def test_outputs_name_what_the_gateway_needs(applied):
    tf, _, _, _ = applied
    out = tf.output()
    assert set(out["launch_templates"]) == {"small", "large", "gpu"}
    assert out["launch_template_id_small"] == out["launch_templates"]["small"]["id"]
    assert out["launch_template_id_small"].startswith("lt-")
    assert len(out["private_subnet_ids"]) == 2
    assert set(out["security_group_ids"]) == {"load_balancer", "hub", "workers", "notebooks"}
    assert out["worker_instance_profile_by_user"] == {
        "alice": f"{NAME}-worker-archive-ro-shared-data-rw",
        "bob": f"{NAME}-worker-shared-data-ro",
        "carol": f"{NAME}-worker-archive-ro-shared-data-rw",
    }
    assert out["hub_url"] == "https://hub.oceanlab.org"
    assert out["gateway_scheduler_address"].startswith("tls://") and out["gateway_scheduler_address"].endswith(":8786")
    (record,) = out["certificate_validation_records"]
    assert record["domain_name"] == "hub.oceanlab.org" and record["resource_record_type"] == "CNAME"


def test_moto_holds_what_the_stack_promises(applied, moto_server):  # noqa: F811
    tf, _, _, _ = applied
    out = tf.output()
    ec2 = moto_server.client("ec2")
    (hub,) = [i for r in ec2.describe_instances(InstanceIds=[out["hub_instance_id"]])["Reservations"]
              for i in r["Instances"]]
    assert "PublicIpAddress" not in hub
    assert hub["MetadataOptions"]["HttpTokens"] == "required"
    assert hub["SubnetId"] == out["private_subnet_ids"][0]
    assert {t["Key"]: t["Value"] for t in hub["Tags"]}["platform"] == NAME  # provider default_tags

    subnets = ec2.describe_subnets(SubnetIds=out["private_subnet_ids"])["Subnets"]
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": out["private_subnet_ids"]}])
    routes = [r for t in tables["RouteTables"] for r in t["Routes"]]
    assert not [r for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0"]  # egress: none
    in_vpc = [{"Name": "vpc-id", "Values": [out["vpc_id"]]}]
    services = {e["ServiceName"].rsplit(".", 1)[-1] for e in ec2.describe_vpc_endpoints(Filters=in_vpc)["VpcEndpoints"]}
    assert {"s3", "ec2", "sts", "logs", "ssm"} <= services
    assert ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [out["vpc_id"]]}])["FlowLogs"]

    for name, template in out["launch_templates"].items():
        (version,) = ec2.describe_launch_template_versions(LaunchTemplateId=template["id"])["LaunchTemplateVersions"]
        data = version["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required", name
        assert data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True, name
        assert data["InstanceInitiatedShutdownBehavior"] == "terminate", name
        assert "InstanceMarketOptions" not in data, name  # spot: per request (deploy/cloud/placement.py)

    s3 = moto_server.client("s3")
    # the data bucket (not the existing one) and the hub's artifacts bucket
    names = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
    assert names == ["oceanlab-artifacts-123456789012", "oceanlab-data"]
    assert s3.get_bucket_versioning(Bucket="oceanlab-data")["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket="oceanlab-data")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert all(s3.get_public_access_block(Bucket="oceanlab-data")["PublicAccessBlockConfiguration"].values())
    policy = json.loads(s3.get_bucket_policy(Bucket="oceanlab-data")["Policy"])
    assert policy["Statement"][0]["Effect"] == "Deny"
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    _check_front_door(moto_server, out)

    logs = moto_server.client("logs")
    (group,) = logs.describe_log_groups(logGroupNamePrefix=out["log_group_name"], limit=1)["logGroups"][:1]
    assert group["retentionInDays"] == 30

    iam = moto_server.client("iam")
    hub_policy = iam.get_role_policy(RoleName=f"{NAME}-hub", PolicyName="launch-platform-instances")["PolicyDocument"]
    launch = next(s for s in hub_policy["Statement"] if s.get("Sid") == "LaunchFromPlatformTemplates")
    template_arns = launch["Condition"]["ArnLike"]["ec2:LaunchTemplate"]
    template_ids = sorted(t["id"] for t in out["launch_templates"].values())
    assert sorted(arn.rsplit("/", 1)[-1] for arn in template_arns) == template_ids


def _check_front_door(moto_server, out: dict) -> None:  # noqa: F811
    elb = moto_server.client("elbv2")
    balancers = {b["LoadBalancerName"]: b for b in elb.describe_load_balancers()["LoadBalancers"]}
    alb, nlb = balancers[f"{NAME}-hub"], balancers[f"{NAME}-dask"]
    assert (alb["Type"], nlb["Type"]) == ("application", "network")  # (moto does not report the scheme)
    assert nlb["SecurityGroups"] == [out["security_group_ids"]["load_balancer"]]
    assert out["gateway_scheduler_address"] == f"tls://{nlb['DNSName']}:8786"

    def listeners(balancer: dict) -> dict[int, dict]:
        found = elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
        return {listener["Port"]: listener for listener in found}

    front, dask = listeners(alb), listeners(nlb)
    assert set(front) == {80, 443} and set(dask) == {8786}
    (redirect,) = front[80]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert {k: redirect["RedirectConfig"][k] for k in ("Protocol", "Port", "StatusCode")} == {
        "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}
    assert dask[8786]["Protocol"] == "TCP"
    (forward,) = dask[8786]["DefaultActions"]
    (group,) = elb.describe_target_groups(TargetGroupArns=[forward["TargetGroupArn"]])["TargetGroups"]
    assert (group["Protocol"], group["Port"]) == ("TCP", 8786)
    targets = elb.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
    assert [(t["Target"]["Id"], t["Target"]["Port"]) for t in targets] == [(out["hub_instance_id"], 8786)]

    # The hub's group, as moto holds it: its scheduler port from the load balancers' and the
    # notebook servers' groups only.
    ec2 = moto_server.client("ec2")
    (hub_group,) = ec2.describe_security_groups(GroupIds=[out["security_group_ids"]["hub"]])["SecurityGroups"]
    scheduler_sources = [pair["GroupId"] for rule in hub_group["IpPermissions"] if rule.get("FromPort") == 8786
                         for pair in rule.get("UserIdGroupPairs", [])]
    assert sorted(scheduler_sources) == sorted([out["security_group_ids"]["load_balancer"],
                                                out["security_group_ids"]["notebooks"]])
    assert not [rule for rule in hub_group["IpPermissions"] if rule.get("IpRanges")]


def test_the_machines_layer_launches_into_the_applied_stack(applied, moto_server, monkeypatch):  # noqa: F811
    tf, _, _, _ = applied
    out = tf.output()
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    machines = AWSMachines(region=moto_server.region, endpoint_url=moto_server.url, platform=NAME)
    subnets = machines.subnets()  # found by the tags the stack gives its private subnets
    assert sorted(subnets.values()) == sorted(out["private_subnet_ids"])
    spec = MachineSpec(name=f"{NAME}-c1-w", template=out["launch_templates"]["large"]["name"], count=2, spot=True,
                       tags={"platform": NAME, "role": "worker", "user": "alice", "cluster": "c1", "budget": "ocean"},
                       instance_profile=out["worker_instance_profile_by_user"]["alice"])
    batch = machines.launch_batch(spec)
    try:
        ec2 = moto_server.client("ec2")
        raws = [i for r in ec2.describe_instances(InstanceIds=[m.id for m in batch])["Reservations"]
                for i in r["Instances"]]
        first_zone = min(subnets)
        assert {r["SubnetId"] for r in raws} == {subnets[first_zone]} and all(m.spot for m in batch)
        assert {g["GroupId"] for r in raws for g in r["SecurityGroups"]} == {out["security_group_ids"]["workers"]}
        assert {r["InstanceType"] for r in raws} == {"m6i.4xlarge"}  # the template's
        # moto associates a request's instance profile with the first instance of a batch only.
        first = min(raws, key=lambda r: r["AmiLaunchIndex"])
        assert first["IamInstanceProfile"]["Arn"].endswith(f"/{spec.instance_profile}")
        assert "PublicIpAddress" not in raws[0]
        assert [m.id for m in machines.list({"platform": NAME, "cluster": "c1"})] == [m.id for m in batch]
    finally:
        machines.terminate([m.id for m in batch])
    assert machines.list({"platform": NAME, "cluster": "c1"}) == []


def test_destroy_leaves_nothing_of_the_platform(applied, moto_server):  # noqa: F811
    tf, targets, main, state = applied
    out = tf.output()
    tf.destroy(*targets)
    state["destroyed"] = True

    ec2 = moto_server.client("ec2")
    platform_filter = [{"Name": "tag:platform", "Values": [NAME]}]
    assert ec2.describe_vpcs(Filters=platform_filter)["Vpcs"] == []
    assert ec2.describe_subnets(Filters=platform_filter)["Subnets"] == []
    assert ec2.describe_security_groups(Filters=platform_filter)["SecurityGroups"] == []
    assert ec2.describe_launch_templates(Filters=platform_filter)["LaunchTemplates"] == []
    live = [i["State"]["Name"] for r in ec2.describe_instances(Filters=platform_filter)["Reservations"]
            for i in r["Instances"]]
    assert set(live) <= {"terminated"}
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [out["vpc_id"]]}])["VpcEndpoints"]
    assert {e["State"] for e in endpoints} <= {"deleted"}
    assert moto_server.client("s3").list_buckets()["Buckets"] == []
    iam = moto_server.client("iam")
    assert [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(f"{NAME}-")] == []
    assert [p for p in iam.list_instance_profiles()["InstanceProfiles"]
            if p["InstanceProfileName"].startswith(f"{NAME}-")] == []
    assert moto_server.client("logs").describe_log_groups(logGroupNamePrefix=f"/graticule/{NAME}")["logGroups"] == []
    assert moto_server.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert moto_server.client("elbv2").describe_target_groups()["TargetGroups"] == []
    assert moto_server.client("acm").list_certificates()["CertificateSummaryList"] == []
    # KMS keys cannot be deleted at once, in AWS or moto: destroy schedules the deletion.
    kms = moto_server.client("kms")
    ours = [k["KeyId"] for k in kms.list_keys()["Keys"]
            if {"TagKey": "platform", "TagValue": NAME} in kms.list_resource_tags(KeyId=k["KeyId"])["Tags"]]
    states = {kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] for key in ours}
    assert states == {"PendingDeletion"}
    assert [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == f"alias/graticule-{NAME}"] == []
    assert [address for address in tf.state_resources() if not address.startswith("data.")] == []
    assert "aws_budgets_budget" in main["resource"]  # rendered, but never applied to moto

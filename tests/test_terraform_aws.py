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
not applied (moto cannot read back their tags or subscribers), so they are checked here
on the rendered JSON and by validate only.
"""

from __future__ import annotations

import json
import shutil

import pytest

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


@pytest.fixture(scope="module")
def stacks() -> dict[str, dict]:
    return {egress: json.loads(render(egress)) for egress in ("nat", "none")}


# --- the rendered JSON -------------------------------------------------------------------


def test_render_is_deterministic(stacks):
    assert render("none") == render("none")
    assert json.loads(render("nat")) == stacks["nat"]


def test_state_backend_is_s3_with_lockfile(stacks):
    backend = stacks["nat"]["terraform"]["backend"]["s3"]
    assert backend["bucket"] == "oceanlab-tfstate"
    assert backend["use_lockfile"] is True and backend["encrypt"] is True
    assert backend["key"] == f"graticule/{NAME}/terraform.tfstate"


def test_egress_none_gives_compute_no_way_out(stacks):
    none, nat = stacks["none"]["resource"], stacks["nat"]["resource"]
    assert "aws_nat_gateway" not in none and "aws_eip" not in none
    assert set(none["aws_route"]) == {"public_internet"}  # the load balancer's subnets only
    assert none["aws_route"]["public_internet"]["route_table_id"] == "${aws_route_table.public.id}"
    endpoints = {block["service_name"].rsplit(".", 1)[-1]: block for block in none["aws_vpc_endpoint"].values()}
    assert {"s3", "ec2", "sts", "logs", "ssm", "secretsmanager"} <= set(endpoints)
    assert endpoints["s3"]["vpc_endpoint_type"] == "Gateway"
    assert all(e["private_dns_enabled"] for k, e in endpoints.items() if k != "s3")
    # With NAT, the private route table's default route goes through it, and no endpoints.
    assert nat["aws_route"]["private_nat"]["nat_gateway_id"] == "${aws_nat_gateway.main.id}"
    assert [e["vpc_endpoint_type"] for e in nat["aws_vpc_endpoint"].values()] == ["Gateway"]


def test_only_the_load_balancer_takes_traffic_from_anywhere(stacks):
    for stack in stacks.values():
        open_rules = [
            (name, rule["from_port"], rule["to_port"])
            for name, rule in stack["resource"]["aws_vpc_security_group_ingress_rule"].items()
            if rule.get("cidr_ipv4") or rule.get("cidr_ipv6")
        ]
        assert open_rules == [("lb_https", 443, 443)]
        hub_ingress = {
            rule["referenced_security_group_id"]
            for rule in stack["resource"]["aws_vpc_security_group_ingress_rule"].values()
            if rule["security_group_id"] == "${aws_security_group.hub.id}"
        }
        assert hub_ingress == {"${aws_security_group.lb.id}", "${aws_security_group.workers.id}"}


def test_launch_templates_per_profile(stacks):
    templates = stacks["nat"]["resource"]["aws_launch_template"]
    assert set(templates) == {"small", "large", "gpu"}
    for name, template in templates.items():
        assert template["name"] == f"{NAME}-{name}"
        assert template["metadata_options"]["http_tokens"] == "required"
        (root,) = template["block_device_mappings"]
        assert root["ebs"]["encrypted"] == "true"
        assert "network_interfaces" not in template and "iam_instance_profile" not in template
        tagged = {spec["resource_type"]: spec["tags"] for spec in template["tag_specifications"]}
        assert tagged["instance"]["profile"] == name and tagged["instance"]["platform"] == NAME
    assert templates["large"]["instance_market_options"]["market_type"] == "spot"
    assert "instance_market_options" not in templates["small"]
    assert templates["gpu"]["instance_type"] == "g4dn.2xlarge"
    assert templates["gpu"]["image_id"] == "${data.aws_ami.gpu_x86_64.id}"
    assert templates["gpu"]["tags"]["gpu"] == "1xnvidia-t4"


def test_budgets_alert_the_configured_addresses(stacks):
    budgets = stacks["nat"]["resource"]["aws_budgets_budget"]
    assert set(budgets) == {"budget_ocean", "budget_students", "budget_bob-thesis"}
    ocean = budgets["budget_ocean"]
    assert ocean["limit_amount"] == "500.00" and ocean["time_unit"] == "MONTHLY"
    assert ocean["cost_filter"] == [{"name": "TagKeyValue", "values": ["user:budget$ocean"]}]
    assert [n["threshold"] for n in ocean["notification"]] == [50, 80, 100]
    assert all(n["subscriber_email_addresses"] == ["ops@oceanlab.org"] for n in ocean["notification"])
    assert "notification" not in budgets["budget_students"]  # no alert thresholds declared


def test_storage_and_worker_grants(stacks):
    resources, data = stacks["nat"]["resource"], stacks["nat"]["data"]
    # The platform creates oceanlab-data; oceanlab-archive exists already and is only granted.
    # (The hub's artifacts bucket is the platform's own: tests/test_hub_vm_render.py.)
    storage = [b["bucket"] for key, b in resources["aws_s3_bucket"].items() if key.startswith("storage_")]
    assert storage == ["oceanlab-data"]
    assert set(resources["aws_iam_role"]) == {
        "flow_logs", "hub", "worker_shared-data-ro", "worker_archive-ro-shared-data-rw",
    }

    def actions(key: str, bucket: str) -> set[str]:
        statements = data["aws_iam_policy_document"][f"worker_{key}"]["statement"]
        return {a for s in statements if f"arn:aws:s3:::{bucket}/*" in s.get("resources", []) for a in s["actions"]}

    assert "s3:PutObject" not in actions("shared-data-ro", "oceanlab-data")  # students: read
    assert "s3:GetObject" in actions("shared-data-ro", "oceanlab-data")
    assert "s3:PutObject" in actions("archive-ro-shared-data-rw", "oceanlab-data")  # ocean: read-write
    assert "s3:PutObject" not in actions("archive-ro-shared-data-rw", "oceanlab-archive")
    assert actions("shared-data-ro", "oceanlab-archive") == set()  # students: not granted


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
    assert set(out["security_group_ids"]) == {"load_balancer", "hub", "workers"}
    assert out["worker_instance_profile_by_user"] == {
        "alice": f"{NAME}-worker-archive-ro-shared-data-rw",
        "bob": f"{NAME}-worker-shared-data-ro",
        "carol": f"{NAME}-worker-archive-ro-shared-data-rw",
    }
    assert out["hub_url"] == "https://hub.oceanlab.org"


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
    large = ec2.describe_launch_template_versions(LaunchTemplateId=out["launch_templates"]["large"]["id"])
    assert large["LaunchTemplateVersions"][0]["LaunchTemplateData"]["InstanceMarketOptions"]["MarketType"] == "spot"

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

    logs = moto_server.client("logs")
    (group,) = logs.describe_log_groups(logGroupNamePrefix=out["log_group_name"], limit=1)["logGroups"][:1]
    assert group["retentionInDays"] == 30

    iam = moto_server.client("iam")
    hub_policy = iam.get_role_policy(RoleName=f"{NAME}-hub", PolicyName="launch-platform-instances")["PolicyDocument"]
    launch = next(s for s in hub_policy["Statement"] if s.get("Sid") == "LaunchFromPlatformTemplates")
    template_arns = launch["Condition"]["ArnLike"]["ec2:LaunchTemplate"]
    template_ids = sorted(t["id"] for t in out["launch_templates"].values())
    assert sorted(arn.rsplit("/", 1)[-1] for arn in template_arns) == template_ids


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


def test_one_zone_no_domain_and_graviton():
    base = example_platform("aws")
    aws = base.cloud.aws.model_copy(update={"zones": 1})
    small = base.profiles["small"].model_copy(
        update={"instance": base.profiles["small"].instance.model_copy(update={"aws": "m7g.large"})}
    )
    platform = base.model_copy(update={
        "cloud": base.cloud.model_copy(update={"aws": aws}),
        "hub": base.hub.model_copy(update={"domain": None}),
        "profiles": {**base.profiles, "small": small},
    })
    (payload,) = synthesize_target(platform, "aws").values()
    stack = json.loads(payload)
    subnets = stack["resource"]["aws_subnet"]
    # One private zone, but the load balancer still gets the two public zones it needs.
    assert sorted(subnets) == ["private_0", "public_0", "public_1"]
    assert stack["resource"]["aws_lb"]["hub"]["subnets"] == ["${aws_subnet.public_0.id}", "${aws_subnet.public_1.id}"]
    # Without a domain there is no ACM request: the operator names a certificate.
    assert "aws_acm_certificate" not in stack["resource"]
    assert stack["resource"]["aws_lb_listener"]["https"]["certificate_arn"] == "${var.certificate_arn}"
    assert stack["output"]["hub_url"]["value"] == "https://${aws_lb.hub.dns_name}"
    assert stack["resource"]["aws_launch_template"]["small"]["image_id"] == "${data.aws_ami.debian_arm64.id}"
    assert stack["data"]["aws_ami"]["debian_arm64"]["filter"][0]["values"] == ["debian-12-arm64-*"]

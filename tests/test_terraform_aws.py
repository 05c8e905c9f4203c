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

from deploy.cloud.aws import AWSMachines
from deploy.cloud.machines import HUB_ROLE, TAG_BUDGET, TAG_PLATFORM, TAG_ROLE, MachineSpec
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
        assert sorted(open_rules) == [("lb_http", 80, 80), ("lb_https", 443, 443), ("lb_scheduler", 8786, 8786)]
        assert {stack["resource"]["aws_vpc_security_group_ingress_rule"][name]["security_group_id"]
                for name, _, _ in open_rules} == {"${aws_security_group.lb.id}"}
        hub_ingress = {
            (rule["referenced_security_group_id"], rule["from_port"], rule["to_port"])
            for rule in stack["resource"]["aws_vpc_security_group_ingress_rule"].values()
            if rule["security_group_id"] == "${aws_security_group.hub.id}"
        }
        lb, workers = "${aws_security_group.lb.id}", "${aws_security_group.workers.id}"
        # The scheduler proxy's port only from the load balancers; the hub proxy also from inside.
        assert hub_ingress == {(lb, 8000, 8000), (lb, 8786, 8786), (workers, 8000, 8000)}
        lb_egress = {
            (rule["referenced_security_group_id"], rule["from_port"], rule["to_port"])
            for rule in stack["resource"]["aws_vpc_security_group_egress_rule"].values()
            if rule["security_group_id"] == lb
        }
        assert lb_egress == {("${aws_security_group.hub.id}", 8000, 8000), ("${aws_security_group.hub.id}", 8786, 8786)}


def test_front_door_listeners(stacks):
    resources, outputs = stacks["nat"]["resource"], stacks["nat"]["output"]
    listeners = resources["aws_lb_listener"]
    assert set(listeners) == {"https", "http", "scheduler"}
    https, http, scheduler = listeners["https"], listeners["http"], listeners["scheduler"]
    assert (https["port"], https["protocol"], https["load_balancer_arn"]) == (443, "HTTPS", "${aws_lb.hub.arn}")
    assert https["certificate_arn"] == "${aws_acm_certificate_validation.hub.certificate_arn}"
    assert https["default_action"] == [{"type": "forward", "target_group_arn": "${aws_lb_target_group.hub.arn}"}]
    # Plain HTTP is never forwarded: a permanent redirect to HTTPS, same host, path and query.
    assert (http["port"], http["protocol"], http["load_balancer_arn"]) == (80, "HTTP", "${aws_lb.hub.arn}")
    assert http["default_action"] == [
        {"type": "redirect", "redirect": {"port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"}}]
    # Dask's TLS through a network load balancer, untouched (TCP, not TLS: no termination).
    nlb = resources["aws_lb"]["scheduler"]
    assert nlb["load_balancer_type"] == "network" and nlb["internal"] is False
    assert nlb["subnets"] == ["${aws_subnet.public_0.id}", "${aws_subnet.public_1.id}"]
    assert nlb["security_groups"] == ["${aws_security_group.lb.id}"]
    assert (scheduler["port"], scheduler["protocol"], scheduler["load_balancer_arn"]) == (
        8786, "TCP", "${aws_lb.scheduler.arn}")
    group = resources["aws_lb_target_group"]["scheduler"]
    assert (group["port"], group["protocol"], group["target_type"]) == (8786, "TCP", "instance")
    assert scheduler["default_action"] == [
        {"type": "forward", "target_group_arn": "${aws_lb_target_group.scheduler.arn}"}]
    attachments = resources["aws_lb_target_group_attachment"]
    assert {(a["target_group_arn"], a["target_id"], a["port"]) for a in attachments.values()} == {
        ("${aws_lb_target_group.hub.arn}", "${aws_instance.hub.id}", 8000),
        ("${aws_lb_target_group.scheduler.arn}", "${aws_instance.hub.id}", 8786),
    }
    assert outputs["gateway_scheduler_address"]["value"] == "tls://${aws_lb.scheduler.dns_name}:8786"
    assert outputs["hub_url"]["value"] == "https://${aws_acm_certificate.hub.domain_name}"
    # The records the operator must create for ACM's DNS validation.
    assert outputs["certificate_validation_records"]["value"] == "${aws_acm_certificate.hub.domain_validation_options}"
    certificate = resources["aws_acm_certificate"]["hub"]
    assert (certificate["domain_name"], certificate["validation_method"]) == ("hub.oceanlab.org", "DNS")
    validation = resources["aws_acm_certificate_validation"]["hub"]
    assert validation["certificate_arn"] == "${aws_acm_certificate.hub.arn}"


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
        # A power-off from inside (the dead-man switch) terminates; spot is asked per request
        # by the machines layer, which can then fall back to on-demand.
        assert template["instance_initiated_shutdown_behavior"] == "terminate"
        assert "instance_market_options" not in template
    assert templates["gpu"]["instance_type"] == "g4dn.2xlarge"
    assert templates["gpu"]["image_id"] == "${data.aws_ami.gpu_x86_64.id}"
    assert templates["gpu"]["tags"]["gpu"] == "1xnvidia-t4"


def test_the_hub_policy_and_the_machines_layer_use_the_same_tag_keys(stacks):
    (hub_policy,) = [d for k, d in stacks["none"]["data"]["aws_iam_policy_document"].items() if k == "hub"]
    conditions = {s["sid"]: s["condition"][0]["variable"] for s in hub_policy["statement"] if s.get("condition")}
    assert conditions["TagLaunchesForThisPlatform"] == f"aws:RequestTag/{TAG_PLATFORM}"
    assert conditions["TagLaunchesWithABudget"] == f"aws:RequestTag/{TAG_BUDGET}"
    assert conditions["StopOnlyThisPlatform"] == f"aws:ResourceTag/{TAG_PLATFORM}"
    # The reaper never touches the hub: it knows it by this tag.
    assert stacks["none"]["resource"]["aws_instance"]["hub"]["tags"][TAG_ROLE] == HUB_ROLE


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

    # The hub's group, as moto holds it: its scheduler port from the load balancers' group only.
    ec2 = moto_server.client("ec2")
    (hub_group,) = ec2.describe_security_groups(GroupIds=[out["security_group_ids"]["hub"]])["SecurityGroups"]
    scheduler_sources = [pair["GroupId"] for rule in hub_group["IpPermissions"] if rule.get("FromPort") == 8786
                         for pair in rule.get("UserIdGroupPairs", [])]
    assert scheduler_sources == [out["security_group_ids"]["load_balancer"]]
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
    assert "certificate_validation_records" not in stack["output"] and "certificate_arn" in stack["variable"]
    assert stack["resource"]["aws_lb_listener"]["http"]["default_action"][0]["type"] == "redirect"
    assert stack["output"]["gateway_scheduler_address"]["value"] == "tls://${aws_lb.scheduler.dns_name}:8786"
    assert stack["resource"]["aws_launch_template"]["small"]["image_id"] == "${data.aws_ami.debian_arm64.id}"
    assert stack["data"]["aws_ami"]["debian_arm64"]["filter"][0]["values"] == ["debian-12-arm64-*"]

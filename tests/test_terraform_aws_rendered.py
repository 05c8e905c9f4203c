"""The rendered AWS stack's JSON, read without Terraform: egress modes, the front door,
launch templates, the hub's policy, budgets, storage grants, a one-zone Graviton platform.
Terraform with the real provider (validate, apply against moto, destroy) is in
tests/test_terraform_aws.py.
"""

from __future__ import annotations

import json

import pytest

from deploy.cloud.machines import HUB_ROLE, TAG_BUDGET, TAG_PLATFORM, TAG_ROLE
from render.terraform import synthesize_target
from tests.support.terraform import example_platform

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
        notebooks = "${aws_security_group.notebooks.id}"
        # The scheduler proxy's port only from the load balancers and notebook servers; the hub
        # proxy also from inside.
        assert hub_ingress == {(lb, 8000, 8000), (lb, 8786, 8786), (workers, 8000, 8000), (notebooks, 8000, 8000),
                               (notebooks, 8786, 8786)}
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


def test_only_a_notebook_instance_may_launch_without_a_budget_and_any_budget_tag_is_a_declared_one(stacks):
    (hub_policy,) = [d for k, d in stacks["none"]["data"]["aws_iam_policy_document"].items() if k == "hub"]
    denials = {s["sid"]: s["condition"] for s in hub_policy["statement"] if s.get("effect") == "Deny"}
    declared = ["ocean", "students", "bob-thesis"]
    # Deny unless the budget is declared, or it is a notebook (whose user may have no budget)...
    assert denials["TagLaunchesWithABudget"] == [
        {"test": "StringNotEquals", "variable": f"aws:RequestTag/{TAG_BUDGET}", "values": declared},
        {"test": "StringNotEquals", "variable": f"aws:RequestTag/{TAG_ROLE}", "values": ["notebook"]}]
    # ...and a budget tag, whenever there is one, names a declared budget.
    assert denials["BudgetTagsAreDeclared"] == [
        {"test": "Null", "variable": f"aws:RequestTag/{TAG_BUDGET}", "values": ["false"]},
        {"test": "StringNotEquals", "variable": f"aws:RequestTag/{TAG_BUDGET}", "values": declared}]


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

"""The rendered GCP stack: checked against the real hashicorp/google provider schema, and
for what it must do (private VMs, Shielded VM, spot, private buckets, firewall, budgets).

The google provider is not in the image's Terraform mirror, so `terraform validate`
cannot run offline; instead every resource and data source type, attribute and nested
block (recursively) is looked up in the provider's published schema, as extracted from
the prebuilt `cdktf-cdktf-provider-google` package by scripts/extract_google_schema.py
into tests/data/google_provider_schema.json (provider version recorded there).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from modules import naming
from modules.gcp.firewall import GOOGLE_LB_RANGES
from modules.gcp.network import PRIVATE_GOOGLE_APIS
from modules.gcp.spec import HUB_PORT
from render.terraform_gcp import synthesize_gcp
from tests.support.gcp_render import example_platform, resources, schema_problems, stack

SCHEMA = Path(__file__).parent / "data" / "google_provider_schema.json"


@cache
def provider_schema() -> dict:
    return json.loads(SCHEMA.read_text())


def storage(rendered: dict, kind: str) -> dict[str, dict]:
    """The storage integrations' buckets or grants, not the hub's artifacts (test_hub_vm_gcp_render)."""
    return {k: v for k, v in resources(rendered, kind).items() if not k.startswith("artifacts")}


# --- the provider schema ----------------------------------------------------------------


@pytest.mark.parametrize("variant", ["nat", "none", "long-names"])
def test_every_type_attribute_and_block_is_in_the_provider_schema(variant: str) -> None:
    schema = provider_schema()
    rendered = stack(variant)
    problems = []
    for section, known in (("resource", schema["resource_schemas"]), ("data", schema["data_source_schemas"])):
        for kind, named in rendered.get(section, {}).items():
            if kind not in known:
                problems.append(f"{section}.{kind}: no such type in hashicorp/google {schema['provider_version']}")
                continue
            for name, body in named.items():
                problems += schema_problems(f"{section}.{kind}.{name}", body, known[kind]["block"], top=True)
    for index, provider in enumerate(rendered["provider"]["google"]):
        problems += schema_problems(f"provider.google[{index}]", provider, schema["provider_schema"]["block"])
    assert problems == []
    assert rendered["resource"], "the stack must not be empty"


def test_the_schema_check_catches_mistakes() -> None:
    template = provider_schema()["resource_schemas"]["google_compute_instance_template"]["block"]
    body = dict(next(iter(resources(stack("nat"), "google_compute_instance_template").values())))
    assert schema_problems("t", body, template, top=True) == []
    body["shielded_vm"] = True
    body["scheduling"] = {"spot": True}
    del body["machine_type"]
    body["network_interface"] = [{"subnetwork": "x", "access_config": "none"}]
    assert sorted(schema_problems("t", body, template, top=True)) == [
        "t.machine_type: required attribute missing",
        "t.network_interface[0].access_config: a block must be an object, got 'none'",
        "t.scheduling.spot: unknown to the provider",
        "t.shielded_vm: unknown to the provider",
    ]


def test_schema_file_names_its_provider_version() -> None:
    schema = provider_schema()
    assert schema["provider"] == "registry.terraform.io/hashicorp/google"
    assert schema["provider_version"].count(".") == 2
    assert schema["source_package"] == "cdktf-cdktf-provider-google"
    major = schema["provider_version"].split(".")[0]
    assert stack("nat")["terraform"]["required_providers"]["google"]["version"].startswith(f"~> {major}.")


# --- behaviour -----------------------------------------------------------------------------


def test_backend_provider_and_labels() -> None:
    rendered = stack("nat")
    assert rendered["terraform"]["backend"] == {"gcs": {"bucket": "oceanlab-tfstate", "prefix": "graticule/oceanlab"}}
    (provider,) = rendered["provider"]["google"]
    assert provider["project"] == "oceanlab-prod"
    assert provider["region"] == "us-central1"
    # default_labels reach every resource with labels; profiles add their own.
    assert provider["default_labels"] == {"platform": "oceanlab", "managed-by": "graticule"}
    for name, template in resources(rendered, "google_compute_instance_template").items():
        assert template["labels"] == {"profile": name}
        (disk,) = template["disk"]
        assert disk["labels"] == {"platform": "oceanlab", "managed-by": "graticule", "profile": name}
    hub_disk = resources(rendered, "google_compute_instance")["hub"]["boot_disk"]["initialize_params"]
    assert hub_disk["labels"]["platform"] == "oceanlab"
    for channel in resources(rendered, "google_monitoring_notification_channel").values():
        assert channel["user_labels"]["platform"] == "oceanlab"


@pytest.mark.parametrize("egress", ["nat", "none"])
def test_no_vm_has_an_external_ip_and_every_vm_is_shielded(egress: str) -> None:
    rendered = stack(egress)
    vms = {**resources(rendered, "google_compute_instance_template"), **resources(rendered, "google_compute_instance")}
    assert len(vms) == 4  # three profiles and the hub
    for vm in vms.values():
        for interface in vm["network_interface"]:
            assert "access_config" not in interface and "ipv6_access_config" not in interface
        assert vm["shielded_instance_config"] == {
            "enable_secure_boot": True, "enable_vtpm": True, "enable_integrity_monitoring": True,
        }
        assert vm["metadata"]["block-project-ssh-keys"] == "true"
        assert vm["can_ip_forward"] is False


def test_one_template_per_profile_spot_and_gpus() -> None:
    templates = resources(stack("nat"), "google_compute_instance_template")
    assert sorted(templates) == ["gpu", "large", "small"]
    assert templates["small"]["name"] == naming.worker_template_name("oceanlab", "small")
    assert templates["small"]["machine_type"] == "n2-standard-2"
    assert templates["large"]["scheduling"]["provisioning_model"] == "SPOT"
    assert templates["large"]["scheduling"]["preemptible"] is True
    for name in ("small", "gpu"):
        assert templates[name]["scheduling"]["provisioning_model"] == "STANDARD"
        assert templates[name]["scheduling"]["preemptible"] is False
    assert templates["gpu"]["guest_accelerator"] == [{"type": "nvidia-tesla-t4", "count": 1}]
    assert templates["gpu"]["scheduling"]["on_host_maintenance"] == "TERMINATE"
    assert "guest_accelerator" not in templates["small"]
    outputs = stack("nat")["output"]
    for name in templates:
        assert naming.instance_template_output(name) in outputs


def test_buckets_are_private_versioned_and_granted_by_group() -> None:
    rendered = stack("nat")
    (bucket,) = storage(rendered, "google_storage_bucket").values()
    assert bucket["name"] == "oceanlab-data"
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["versioning"] == {"enabled": True}
    grants = {(m["member"], m["role"]) for m in storage(rendered, "google_storage_bucket_iam_member").values()}
    accounts = resources(rendered, "google_service_account")
    # ocean reads and writes, students read; the account without grants reaches nothing.
    assert grants == {
        ("serviceAccount:${google_service_account.worker_shared-data-rw.email}", "roles/storage.objectUser"),
        ("serviceAccount:${google_service_account.worker_shared-data-ro.email}", "roles/storage.objectViewer"),
    }
    assert accounts["worker_shared-data-rw"]["account_id"] == "oceanlab-w-shared-data-rw"
    assert "worker_none" in accounts
    assert stack("nat")["output"]["worker_service_accounts"]["value"]["none"].endswith("worker_none.email}")


def test_existing_buckets_are_granted_but_not_created() -> None:
    def existing(data) -> None:
        data["integrations"]["storage"][0]["existing"] = True

    rendered = json.loads(synthesize_gcp(example_platform("nat", existing)))
    assert storage(rendered, "google_storage_bucket") == {}
    buckets = {member["bucket"] for member in storage(rendered, "google_storage_bucket_iam_member").values()}
    assert buckets == {"oceanlab-data"}


def test_firewall_mirrors_the_security_groups() -> None:
    rules = resources(stack("nat"), "google_compute_firewall")
    lb = rules["lb_to_hub"]
    assert lb["source_ranges"] == list(GOOGLE_LB_RANGES)
    assert lb["target_tags"] == ["oceanlab-hub"]
    assert lb["allow"] == [{"protocol": "tcp", "ports": [str(HUB_PORT), "8786"]}]  # the hub and the schedulers
    assert rules["workers_to_hub"]["source_tags"] == ["oceanlab-worker"]
    assert rules["hub_to_workers"]["source_tags"] == ["oceanlab-hub"]
    assert rules["workers_to_workers"]["target_tags"] == ["oceanlab-worker"]
    for rule in rules.values():
        if rule["direction"] == "INGRESS" and "allow" in rule:
            assert "0.0.0.0/0" not in rule.get("source_ranges", [])
    for key, direction in (("deny_ingress", "INGRESS"), ("deny_egress", "EGRESS")):
        assert rules[key]["direction"] == direction
        assert rules[key]["deny"] == [{"protocol": "all"}]
        assert rules[key]["priority"] == 65534
    allowed = [rule for rule in rules.values() if "allow" in rule]
    assert allowed and all(rule["priority"] < 65534 for rule in allowed)
    # The tags the rules name are the ones the VMs carry.
    templates = resources(stack("nat"), "google_compute_instance_template")
    assert all(t["tags"] == ["oceanlab-worker"] for t in templates.values())
    assert resources(stack("nat"), "google_compute_instance")["hub"]["tags"] == ["oceanlab-hub"]


def test_egress_nat_has_router_and_nat_with_private_google_access() -> None:
    rendered = stack("nat")
    assert resources(rendered, "google_compute_subnetwork")["compute"]["private_ip_google_access"] is True
    assert resources(rendered, "google_compute_subnetwork")["compute"]["ip_cidr_range"] == "10.50.0.0/16"
    assert len(resources(rendered, "google_compute_router_nat")) == 1
    assert resources(rendered, "google_compute_network")["main"]["delete_default_routes_on_create"] is False
    assert resources(rendered, "google_compute_firewall")["egress_https"]["destination_ranges"] == ["0.0.0.0/0"]


def test_egress_none_has_no_nat_and_no_internet_route() -> None:
    rendered = stack("none")
    assert resources(rendered, "google_compute_router_nat") == {}
    assert resources(rendered, "google_compute_router") == {}
    assert resources(rendered, "google_compute_network")["main"]["delete_default_routes_on_create"] is True
    (route,) = resources(rendered, "google_compute_route").values()
    assert route["dest_range"] == PRIVATE_GOOGLE_APIS
    assert resources(rendered, "google_compute_subnetwork")["compute"]["private_ip_google_access"] is True
    rules = resources(rendered, "google_compute_firewall")
    assert "egress_https" not in rules
    assert rules["egress_google_apis"]["destination_ranges"] == [PRIVATE_GOOGLE_APIS]
    zone = resources(rendered, "google_dns_managed_zone")["googleapis"]
    assert zone["visibility"] == "private" and zone["dns_name"] == "googleapis.com."


def test_one_billing_budget_per_budget_with_its_thresholds() -> None:
    budgets = resources(stack("nat"), "google_billing_budget")
    assert sorted(budgets) == ["bob-thesis", "ocean", "students"]
    ocean = budgets["ocean"]
    assert [rule["threshold_percent"] for rule in ocean["threshold_rules"]] == [0.5, 0.8, 1.0]
    assert ocean["amount"] == {"specified_amount": {"currency_code": "USD", "units": "500"}}
    assert ocean["budget_filter"]["labels"] == {"budget": "ocean"}
    assert ocean["billing_account"] == "${data.google_project.this.billing_account}"
    assert ocean["all_updates_rule"]["monitoring_notification_channels"] == [
        "${google_monitoring_notification_channel.alert_email_0.id}"
    ]
    # No alerts declared: still told when the budget is spent.
    assert [rule["threshold_percent"] for rule in budgets["students"]["threshold_rules"]] == [1.0]
    (channel,) = resources(stack("nat"), "google_monitoring_notification_channel").values()
    assert channel["labels"] == {"email_address": "ops@oceanlab.org"}


def test_log_bucket_keeps_logs_for_retention_days() -> None:
    def longer(data) -> None:
        data["integrations"]["logs"]["retention_days"] = 90

    assert resources(stack("nat"), "google_logging_project_bucket_config")["platform"]["retention_days"] == 30
    rendered = json.loads(synthesize_gcp(example_platform("nat", longer)))
    assert resources(rendered, "google_logging_project_bucket_config")["platform"]["retention_days"] == 90


def test_hub_may_launch_only_from_this_platforms_templates() -> None:
    rendered = stack("nat")
    members = resources(rendered, "google_project_iam_member")
    condition = members["hub_launch"]["condition"]["expression"]
    assert '["oceanlab-small", "oceanlab-large", "oceanlab-gpu"]' in condition
    assert '!resource.name.endsWith("/instances/oceanlab-hub")' in condition
    roles = resources(rendered, "google_project_iam_custom_role")
    assert "compute.instances.create" in roles["hub_launch"]["permissions"]
    assert not any(p.endswith((".create", ".delete")) for p in roles["hub_read"]["permissions"])
    assert "condition" not in members["hub_read"]
    # No basic roles anywhere, and the hub may act as the worker accounts only.
    assert not any(m["role"] in ("roles/owner", "roles/editor") for m in members.values())
    users = resources(rendered, "google_service_account_iam_member")
    assert {u["role"] for u in users.values()} == {"roles/iam.serviceAccountUser"}
    assert len(users) == len(resources(rendered, "google_service_account")) - 1


def test_https_load_balancer_in_front_of_the_hub() -> None:
    rendered = stack("nat")
    rule = resources(rendered, "google_compute_global_forwarding_rule")["hub_https"]  # Dask: test_gcp_schedulers_lb
    assert rule["port_range"] == "443"
    assert rule["target"] == "${google_compute_target_https_proxy.hub.id}"
    (cert,) = resources(rendered, "google_compute_managed_ssl_certificate").values()
    assert cert["managed"]["domains"] == ["hub.oceanlab.org"]
    (policy,) = resources(rendered, "google_compute_ssl_policy").values()
    assert policy["min_tls_version"] == "TLS_1_2"
    (group,) = resources(rendered, "google_compute_instance_group").values()
    assert group["named_port"] == [{"name": "hub", "port": HUB_PORT}, {"name": "dask", "port": 8786}]


def test_render_is_deterministic() -> None:
    platform = example_platform("nat")
    assert synthesize_gcp(platform) == synthesize_gcp(platform)


GCP_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
NAMED_BY_GCP_RULES = (
    "google_compute_network", "google_compute_subnetwork", "google_compute_router", "google_compute_router_nat",
    "google_compute_firewall", "google_compute_instance_template", "google_compute_instance",
    "google_compute_instance_group", "google_compute_global_address", "google_compute_health_check",
    "google_compute_backend_service", "google_compute_url_map", "google_compute_ssl_policy", "google_dns_managed_zone",
    "google_compute_target_https_proxy", "google_compute_target_tcp_proxy", "google_compute_global_forwarding_rule",
)


def test_names_stay_within_gcp_limits_for_long_names() -> None:
    import re

    rendered = stack("long-names")
    for kind in NAMED_BY_GCP_RULES:
        for body in resources(rendered, kind).values():
            assert re.match(GCP_NAME, body["name"]), (kind, body["name"])
    accounts = [a["account_id"] for a in resources(rendered, "google_service_account").values()]
    assert len(accounts) == len(set(accounts)) == 4  # hub, none, ocean's and students' grants
    assert all(re.match(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$", account) for account in accounts), accounts
    for role in resources(rendered, "google_project_iam_custom_role").values():
        assert re.match(r"^[a-zA-Z0-9_.]{3,64}$", role["role_id"])
    template = resources(rendered, "google_compute_instance_template")["big_mem"]
    assert template["name"] == naming.worker_template_name("a-very-long-platform-name-12345", "big_mem")
    assert template["name"] in resources(rendered, "google_project_iam_member")["hub_launch"]["condition"]["expression"]
    # Without hub.domain the operator supplies the certificate, as on AWS.
    assert resources(rendered, "google_compute_managed_ssl_certificate") == {}
    assert "ssl_certificate" in rendered["variable"]
    assert resources(rendered, "google_compute_target_https_proxy")["hub"]["ssl_certificates"] == [
        "${var.ssl_certificate}"
    ]
    # Users whose groups grant the same buckets share one worker account.
    by_user = rendered["output"]["worker_service_account_by_user"]["value"]
    assert by_user["alice"] == by_user["carol"] != by_user["bob"]



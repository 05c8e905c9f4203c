"""cost.json against figures worked out by hand from the providers' published prices
(written here, not looked up in the table the code reads), multi-GPU profiles, and
resources rendered with `count` / `for_each`."""

from __future__ import annotations

import copy
import json

import pytest

from render.build import render
from render.cost import profile_price, render_cost
from render.validate import validate_text
from tests.support.example_variants import EXAMPLE

HOURS = 730  # a month, as the providers' monthly figures count it


def platform(edit=None, **replace):
    data = copy.deepcopy(EXAMPLE)
    data.update(replace)
    if edit:
        edit(data)
    return validate_text(json.dumps(data))


def cost_of(target: str, edit=None, terraform: dict | None = None) -> dict:
    model = platform(edit, target=target)
    files = {"terraform/x/main.tf.json": json.dumps(terraform).encode()} if terraform is not None else None
    if files is None:
        return json.loads(render(model, target)["cost.json"])
    return json.loads(render_cost(model, target, files)["cost.json"])


# -- fixed monthly items of the example's real stacks -------------------------------------

AWS_US_WEST_2 = {  # label: (count, unit USD a month by hand)
    "hub instance": (1, round(0.0832 * HOURS, 2)),  # t3.large $0.0832/h: $60.74
    "NAT gateway": (1, round(0.045 * HOURS, 2)),  # $0.045/h: $32.85
    # The ALB (HTTPS to the hub) and the NLB (Dask's TLS to the gateway): $0.0225/h x 730 h each
    "load balancer": (2, 16.43),
    "public IPv4 address": (1, round(0.005 * HOURS, 2)),  # $0.005/h: $3.65 (the NAT gateway's EIP)
    "KMS key": (1, 1.00),  # $1 per customer-managed key a month
}
GCP_US_CENTRAL1 = {
    "hub instance": (1, round(0.067006 * HOURS, 2)),  # e2-standard-2 $0.067006/h: $48.91
    "NAT gateway": (1, round(0.0014 * HOURS, 2)),  # Cloud NAT $0.0014/h per VM behind it: $1.02
    "load balancer": (1, round(0.025 * HOURS, 2)),  # forwarding rules, first five: $0.025/h: $18.25
    "KMS key": (1, 0.06),  # $0.06 per key version a month
}


@pytest.mark.parametrize(("target", "expected"), [("aws", AWS_US_WEST_2), ("gcp", GCP_US_CENTRAL1)])
def test_every_fixed_item_of_the_example_matches_the_published_price(target, expected):
    document = cost_of(target)
    items = document["fixed_monthly"]["items"]
    assert {label: (item["count"], item["unit_monthly_usd"]) for label, item in items.items()} == expected
    assert all(item["monthly_usd"] == round(item["count"] * item["unit_monthly_usd"], 2) for item in items.values())
    total = round(sum(count * unit for count, unit in expected.values()), 2)
    assert document["fixed_monthly"]["total_usd"] == total
    assert document["hours_per_month"] == HOURS and document["unpriced"] == []


def test_the_aws_example_costs_what_the_readme_says():
    assert cost_of("aws")["fixed_monthly"]["total_usd"] == 131.10  # 60.74 + 32.85 + 2 x 16.43 + 3.65 + 1.00


def test_aws_egress_none_pays_interface_endpoints_per_zone_instead_of_nat():
    def edit(data):
        data["cloud"]["aws"]["egress"] = "none"
        data["cloud"]["aws"]["zones"] = 3
        data["hub"]["auth"] = {"provider": "local"}

    items = cost_of("aws", edit)["fixed_monthly"]["items"]
    assert "NAT gateway" not in items and "public IPv4 address" not in items
    endpoints = items["interface endpoint (per zone)"]
    assert endpoints["unit_monthly_usd"] == round(0.01 * HOURS, 2)  # $0.01/h per endpoint per zone: $7.30
    assert endpoints["count"] % 3 == 0 and endpoints["count"] >= 3


# -- count and for_each ----------------------------------------------------------------------


def test_count_and_for_each_multiply_resources():
    stack = {
        "resource": {
            "aws_nat_gateway": {
                "counted": {"count": 3},
                "per_key": {"for_each": {"a": 1, "b": 2}},
                "per_item": {"for_each": ["x"]},
                "unknown_until_apply": {"count": "${var.zones}"},  # not a literal: counted once
                "plain": {},
            },
            "aws_eip": {"none": {"count": 0}},
            "aws_vpc_endpoint": {
                "listed": {"vpc_endpoint_type": "Interface", "count": 2, "subnet_ids": ["a", "b", "c"]},
                "gateway": {"vpc_endpoint_type": "Gateway", "count": 5},
            },
        }
    }
    items = cost_of("aws", terraform=stack)["fixed_monthly"]["items"]
    assert items["NAT gateway"]["count"] == 3 + 2 + 1 + 1 + 1
    assert items["NAT gateway"]["monthly_usd"] == round(8 * 32.85, 2)
    assert "public IPv4 address" not in items  # count: 0 makes nothing
    assert items["interface endpoint (per zone)"]["count"] == 2 * 3


def test_gcp_load_balancer_is_one_charge_for_up_to_five_rules():
    rules = {
        "google_compute_global_forwarding_rule": {"https": {"count": 2}},
        "google_compute_forwarding_rule": {"x": {}},
    }
    items = cost_of("gcp", terraform={"resource": rules})["fixed_monthly"]["items"]
    assert items["load balancer"]["count"] == 1
    nat = {"google_compute_router_nat": {"nat": {"for_each": {"a": 1, "b": 1}}}}
    items = cost_of("gcp", terraform={"resource": nat})["fixed_monthly"]["items"]
    assert "load balancer" not in items and items["NAT gateway"]["count"] == 2


def test_files_other_than_terraform_json_are_not_counted():
    model = platform(target="aws")
    stack = json.dumps({"resource": {"aws_nat_gateway": {"a": {}}}}).encode()
    document = json.loads(render_cost(model, "aws", {"terraform/aws/notes.txt": stack})["cost.json"])
    assert "NAT gateway" not in document["fixed_monthly"]["items"] and document["counted_from"] == []


# -- profiles: GPUs, spot, overrides ------------------------------------------------------------


def _gpu(count: int, gpu_type: str = "nvidia-t4", instance: dict | None = None):
    def edit(data):
        profile = data["profiles"]["gpu"]
        profile.pop("price_per_hour_usd")
        profile["gpu"] = {"count": count, "type": gpu_type}
        if instance:
            profile["instance"] = instance

    return edit


def test_gcp_multi_gpu_adds_each_gpu_to_the_machine_type():
    one = profile_price(platform(_gpu(1), target="gcp"), "gcp", "gpu")
    four = profile_price(platform(_gpu(4), target="gcp"), "gcp", "gpu")
    assert one.price_per_hour_usd == round(0.38 + 0.35, 4)  # n1-standard-8 $0.38/h + one T4 $0.35/h
    assert four.price_per_hour_usd == round(0.38 + 4 * 0.35, 4)  # $1.78/h
    v100 = profile_price(platform(_gpu(2, "nvidia-v100"), target="gcp"), "gcp", "gpu")
    assert v100.price_per_hour_usd == round(0.38 + 2 * 2.48, 4)  # V100 $2.48/h each (an L4 comes built into g2 only)


def test_gcp_multi_gpu_spot_is_discounted_as_a_whole():
    def edit(data):
        _gpu(4)(data)
        data["profiles"]["gpu"]["spot"] = True

    price = profile_price(platform(edit, target="gcp"), "gcp", "gpu")
    assert (price.price_per_hour_usd, price.on_demand_per_hour_usd) == (round(1.78 * 0.3, 4), 1.78)


def test_aws_multi_gpu_instance_types_include_their_gpus():
    edit = _gpu(4, instance={"aws": "g4dn.12xlarge", "gcp": "n1-standard-8"})
    price = profile_price(platform(edit, target="aws"), "aws", "gpu")
    assert (price.price_per_hour_usd, price.source) == (3.912, "price table, on-demand")  # 4 x T4 included


def test_an_override_wins_but_the_list_price_is_still_shown():
    price = profile_price(platform(target="aws"), "aws", "gpu")
    assert (price.price_per_hour_usd, price.on_demand_per_hour_usd) == (0.752, 0.752)
    assert price.source == "price_per_hour_usd in platform.yaml"
    local = profile_price(platform(), "local", "small")
    assert (local.price_per_hour_usd, local.on_demand_per_hour_usd) == (0.0, None)
    assert local.source == "local target: no charge"


def test_an_unpriced_profile_is_refused_by_a_direct_caller():
    model = platform(target="aws", cloud={"aws": {**EXAMPLE["cloud"]["aws"], "region": "eu-west-1"}})
    assert profile_price(model, "aws", "small").price_per_hour_usd == 0.107  # m6i.large in Ireland
    with pytest.raises(LookupError, match="profile 'small': no known gcp price for 'n2-standard-2' in None"):
        profile_price(model, "gcp", "small")


def test_a_hub_outside_the_price_table_is_listed_as_unpriced():
    # m7a.large is offered in us-west-2 (machine catalog) but is not in the price table
    document = cost_of("aws", lambda d: d["hub"].update(instance={"aws": "m7a.large", "gcp": "e2-standard-2"}))
    hub = document["fixed_monthly"]["items"]["hub instance"]
    assert (hub["detail"], hub["monthly_usd"], hub["unit_monthly_usd"]) == ("m7a.large", None, None)
    assert document["unpriced"] == ["hub instance m7a.large (not in the price table for us-west-2)"]
    assert document["fixed_monthly"]["total_usd"] == round(32.85 + 2 * 16.43 + 3.65 + 1.0, 2)


def test_spot_prices_are_rounded_to_a_hundredth_of_a_cent():
    def edit(data):
        data["profiles"]["small"]["spot"] = True

    price = profile_price(platform(edit, target="gcp"), "gcp", "small")
    assert price.price_per_hour_usd == 0.0291  # n2-standard-2 $0.0971/h x 0.3 = $0.02913


def test_gpu_sums_keep_four_decimals():
    def edit(data):
        _gpu(1)(data)
        data["cloud"]["gcp"]["region"] = "europe-west1"

    price = profile_price(platform(edit, target="gcp"), "gcp", "gpu")
    assert price.price_per_hour_usd == 0.7684  # n1-standard-8 $0.4184/h + one T4 $0.35/h in Belgium


def test_cost_json_defaults_to_the_platform_target_and_is_stable_readable_json():
    model = platform(target="gcp")
    payload = render_cost(model)["cost.json"]
    document = json.loads(payload)
    assert document["target"] == "gcp" and document["region"] == "us-central1"
    assert payload == (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()  # stable keys, 2-space indent


def test_only_terraform_json_files_are_counted_whatever_their_order():
    stack = json.dumps({"resource": {"aws_nat_gateway": {"a": {}}}}).encode()
    files = {"terraform/aws/a-notes.txt": b"not json", "terraform/aws/main.tf.json": stack}
    document = json.loads(render_cost(platform(target="aws"), "aws", files)["cost.json"])
    assert document["fixed_monthly"]["items"]["NAT gateway"]["count"] == 1
    assert document["counted_from"] == ["terraform/aws/main.tf.json"]


def test_interface_endpoints_count_one_zone_without_an_aws_block():
    def edit(data):
        data["cloud"].pop("aws")
        for profile in data["profiles"].values():
            profile["price_per_hour_usd"] = 1.0

    model = platform(edit, target="gcp")  # priced for aws by a direct caller
    stack = {"resource": {"aws_vpc_endpoint": {"logs": {"vpc_endpoint_type": "Interface"}}}}
    files = {"terraform/aws/main.tf.json": json.dumps(stack).encode()}
    items = json.loads(render_cost(model, "aws", files)["cost.json"])["fixed_monthly"]["items"]
    assert items["interface endpoint (per zone)"]["count"] == 1

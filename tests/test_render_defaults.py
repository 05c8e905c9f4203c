"""Every default of the schema, observed where it matters: in the rendered output of a
platform.yaml that leaves the key out (not by reading the model's default back)."""

from __future__ import annotations

import copy
import json

import pytest

from render.build import render
from render.validate import validate_text
from tests.support.example_variants import EXAMPLE


def rendered(edit, target: str = "local") -> dict[str, dict]:
    """The JSON files of the example's render on `target`, after `edit` removed some keys."""
    data = copy.deepcopy(EXAMPLE)
    edit(data)
    files = render(validate_text(json.dumps(data)), target)
    return {path: json.loads(body) for path, body in files.items() if path.endswith(".json")}


def test_target_defaults_to_local():
    files = rendered(lambda d: d.pop("target"))
    assert files["hub/platform.json"]["target"] == "local"
    assert not any(path.startswith("terraform/") for path in files)


def test_hub_and_dask_timeouts_and_limits_default():
    def edit(data):
        data["hub"].pop("idle_timeout")
        data["dask"] = {"default_profile": "small"}

    files = rendered(edit)
    assert files["hub/platform.json"]["idle_timeout"] == 3600  # 1h
    assert files["gateway/platform.json"]["dask"] == {
        "default_profile": "small",
        "idle_timeout": 1200,  # 20m
        "max_lifetime": 86400,  # 24h
        "max_workers": 100,
    }


def test_group_and_user_defaults():
    def edit(data):
        data["groups"]["extra"] = {}
        data["users"].append({"name": "dave", "groups": ["extra"]})

    hub = rendered(edit)["hub/platform.json"]
    assert hub["groups"]["extra"] == {"admin": False, "environments": [], "profiles": [], "users": ["dave"]}
    dave = hub["users"]["dave"]
    assert (dave["admin"], dave["budget"], dave["email"], dave["profiles"]) == (False, None, None, [])


def test_budget_defaults():
    def edit(data):
        data["budgets"]["ocean"] = {"monthly_usd": 500}

    gateway = rendered(edit)["gateway/platform.json"]
    expected = {"alerts": [], "max_cores": None, "monthly_usd": 500.0, "on_exhausted": "stop"}
    assert gateway["budgets"]["ocean"] == expected


def test_no_budgets_and_no_alert_recipients_by_default():
    def edit(data):
        data.pop("budgets")
        for group in data["groups"].values():
            group.pop("budget", None)
        data["users"][1].pop("budget")
        data.pop("integrations")

    gateway = rendered(edit)["gateway/platform.json"]
    assert gateway["budgets"] == {} and gateway["alerts"] == {"email": []}
    assert {user["budget"] for user in gateway["users"].values()} == {None}


def test_oidc_username_claim_defaults_to_preferred_username():
    def edit(data):
        data["hub"]["auth"] = {"provider": "oidc", "oidc": {"issuer": "https://id.example.org", "client_id": "x"}}

    assert rendered(edit, "aws")["hub/platform.json"]["auth"]["username_claim"] == "preferred_username"


def test_profile_defaults_on_aws():
    def edit(data):
        data["profiles"]["large"].pop("spot")
        data["profiles"]["gpu"].pop("gpu")
        data["profiles"]["gpu"].pop("price_per_hour_usd")

    files = rendered(edit, "aws")
    large, gpu = files["workers/large.json"], files["workers/gpu.json"]
    assert (large["spot"], large["price_per_hour_usd"]) == (False, 0.768)  # on demand: m6i.4xlarge's list price
    assert (gpu["gpu"], gpu["price_per_hour_usd"]) == (None, 0.752)  # g4dn.2xlarge from the table


@pytest.fixture(scope="module")
def aws_defaults() -> dict:
    def edit(data):
        for key in ("zones", "egress"):
            data["cloud"]["aws"].pop(key)
        data["integrations"]["logs"] = {}
        data["integrations"]["storage"] = [{"name": "scratch", "bucket": "oceanlab-scratch"}]

    return rendered(edit, "aws")["terraform/aws/main.tf.json"]["resource"]


def test_aws_defaults_two_zones_and_nat(aws_defaults):
    assert sorted(aws_defaults["aws_subnet"]) == ["private_0", "private_1", "public_0", "public_1"]
    assert list(aws_defaults["aws_nat_gateway"]) == ["main"]


def test_logs_are_kept_30_days_by_default(aws_defaults):
    assert {group["retention_in_days"] for group in aws_defaults["aws_cloudwatch_log_group"].values()} == {30}


def test_storage_is_created_and_granted_to_nobody_by_default(aws_defaults):
    # the declared storage, beside the platform's own artifacts bucket (the hub VM's wheelhouse and config)
    assert sorted(aws_defaults["aws_s3_bucket"]) == ["artifacts", "storage_scratch"]
    assert [name for name in aws_defaults["aws_iam_role"] if name.startswith("worker_")] == ["worker_none"]


def test_gcp_egress_defaults_to_nat():
    resources = rendered(lambda d: d["cloud"]["gcp"].pop("egress"), "gcp")["terraform/gcp/main.tf.json"]["resource"]
    assert resources["google_compute_router_nat"]

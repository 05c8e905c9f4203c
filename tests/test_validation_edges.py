"""Each cross-reference rule (render/checks.py) with its allowed case beside its error case,
and the "declared: ..." and "did you mean" parts of the messages.

Variants are built from the example as data and fed to the validator as JSON (which is
YAML), so each test states exactly the one thing it changes.
"""

from __future__ import annotations

import pytest

from tests.support.example_variants import problems


def test_the_example_is_valid():
    assert problems() == {}


# -- target and cloud blocks ------------------------------------------------------------


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_a_cloud_target_needs_its_cloud_block(target):
    other = "gcp" if target == "aws" else "aws"
    assert problems(lambda d: d["cloud"].pop(other), target=target) == {}
    assert problems(lambda d: d["cloud"].pop(target), target=target) == {
        "target": f"target is {target!r} but there is no cloud.{target} block"
    }


def test_the_local_target_needs_no_cloud_block():
    assert problems(lambda d: d.pop("cloud")) == {}


# -- names that must be declared ---------------------------------------------------------


def test_unknown_group_budget_lists_what_is_declared_and_suggests():
    assert problems(lambda d: d["groups"]["ocean"].update(budget="oceans")) == {
        "groups.ocean.budget": "unknown budget 'oceans' (did you mean 'ocean'?); declared: bob-thesis, ocean, students"
    }


def test_unknown_names_without_a_close_match_get_no_suggestion():
    assert problems(lambda d: d["groups"]["ocean"].update(budget="zzz")) == {
        "groups.ocean.budget": "unknown budget 'zzz'; declared: bob-thesis, ocean, students"
    }


def test_unknown_group_profile_and_environment():
    def edit(data):
        data["groups"]["students"]["profiles"] = ["small", "smal"]
        data["groups"]["students"]["environments"] = ["default", "ml2"]

    assert problems(edit) == {
        "groups.students.profiles[1]": "unknown profile 'smal' (did you mean 'small'?); declared: gpu, large, small",
        "groups.students.environments[1]": "unknown environment 'ml2' (did you mean 'ml'?); declared: default, ml",
    }


def test_a_reference_into_a_malformed_section_is_left_to_the_schema():
    found = problems(lambda d: d.update(budgets=["ocean"]))
    assert list(found) == ["budgets"]  # the list itself, not a second error per reference


def test_unknown_default_profiles():
    def edit(data):
        data["hub"]["default_profile"] = "large2"
        data["dask"]["default_profile"] = "huge"

    assert problems(edit) == {
        "hub.default_profile": "unknown profile 'large2' (did you mean 'large'?); declared: gpu, large, small",
        "dask.default_profile": "unknown profile 'huge'; declared: gpu, large, small",
    }


def test_nothing_declared_says_so():
    def edit(data):
        data["budgets"] = {}
        data["users"][1].pop("budget")

    found = problems(edit)
    assert found["groups.ocean.budget"] == "unknown budget 'ocean'; declared: none declared"


# -- users ---------------------------------------------------------------------------------


def test_a_user_declared_twice():
    assert problems(lambda d: d["users"].append({"name": "bob", "groups": ["students"]})) == {
        "users[3].name": "user 'bob' is already declared at users[1]"
    }


def test_groups_empty_or_absent_means_in_no_group():
    message = "user 'carol' is in no group; add at least one under groups"
    assert problems(lambda d: d["users"][2].update(groups=[])) == {"users[2]": message}
    assert problems(lambda d: d["users"][2].pop("groups")) == {"users[2]": message}


def test_unknown_group_of_a_user():
    assert problems(lambda d: d["users"][2].update(groups=["oceans"])) == {
        "users[2].groups[0]": "unknown group 'oceans' (did you mean 'ocean'?); declared: admins, ocean, students"
    }


def test_unknown_personal_budget():
    assert problems(lambda d: d["users"][1].update(budget="bob-thesys")) == {
        "users[1].budget": "unknown budget 'bob-thesys' (did you mean 'bob-thesis'?); "
        "declared: bob-thesis, ocean, students"
    }


def test_groups_with_different_budgets_need_a_personal_budget():
    in_both = {"name": "dave", "groups": ["ocean", "students"]}
    assert problems(lambda d: d["users"].append(in_both)) == {
        "users[3].groups": "user 'dave' is in groups with different budgets (ocean, students); "
        "give the user a personal `budget:` to say which one pays"
    }
    assert problems(lambda d: d["users"].append({**in_both, "budget": "ocean"})) == {}  # the personal one wins


def test_groups_with_the_same_budget_or_one_budget_need_no_personal_budget():
    def same(data):
        data["groups"]["students"]["budget"] = "ocean"
        data["users"].append({"name": "dave", "groups": ["ocean", "students"]})

    assert problems(same) == {}
    assert problems(lambda d: d["users"].append({"name": "dave", "groups": ["admins", "students"]})) == {}


# -- budgets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alerts", "errors"),
    [
        ([50, 80, 100], {}),
        ([1, 100], {}),
        ([50, 50], {"budgets.ocean.alerts[1]": "alert thresholds must be strictly ascending; 50 follows 50"}),
        ([80, 50, 90], {"budgets.ocean.alerts[1]": "alert thresholds must be strictly ascending; 50 follows 80"}),
    ],
)
def test_alert_thresholds_strictly_ascending(alerts, errors):
    assert problems(lambda d: d["budgets"]["ocean"].update(alerts=alerts)) == errors


# -- storage -------------------------------------------------------------------------------


def test_a_storage_name_declared_twice():
    second = {"name": "shared-data", "bucket": "oceanlab-other"}
    assert problems(lambda d: d["integrations"]["storage"].append(second)) == {
        "integrations.storage[1].name": "storage 'shared-data' is declared twice"
    }
    assert problems(lambda d: d["integrations"]["storage"].append({**second, "name": "other"})) == {}


def test_storage_access_for_an_unknown_group():
    access = {"ocean": "read-write", "student": "read"}
    assert problems(lambda d: d["integrations"]["storage"][0].update(access=access)) == {
        "integrations.storage[0].access.student": "unknown group 'student' (did you mean 'students'?); "
        "declared: admins, ocean, students"
    }


# -- cloud targets: instances, prices, auth, CI ----------------------------------------------


def test_a_cloud_target_needs_instance_types_for_the_hub_and_every_profile():
    def edit(data):
        data["hub"].pop("instance")
        data["profiles"]["small"]["instance"] = {"gcp": "n2-standard-2"}
        data["profiles"]["large"].pop("instance")

    assert problems(edit, target="aws") == {
        "hub": "target is 'aws': the hub needs an `instance: {aws: ...}` entry",
        "profiles.small.instance": "target is 'aws': profile 'small' needs an instance type for aws",
        "profiles.large": "target is 'aws': profile 'large' needs an instance type for aws",
    }
    assert problems(edit) == {}  # local needs no instance types


def test_the_hub_instance_entry_missing_for_the_target_points_at_instance():
    assert problems(lambda d: d["hub"].update(instance={"gcp": "e2-standard-2"}), target="aws") == {
        "hub.instance": "target is 'aws': the hub needs an `instance: {aws: ...}` entry"
    }


def test_a_price_override_allows_an_instance_type_the_table_lacks():
    assert problems(lambda d: d["profiles"]["small"]["instance"].update(gcp="n2d-standard-2"), target="gcp") == {
        "profiles.small.instance.gcp": "no known price for gcp instance type 'n2d-standard-2' in us-central1 in the "
        "price table of 2026-11-01 (did you mean 'n2-standard-2'?); set `price_per_hour_usd:` on profile 'small'"
    }

    def priced(data):
        data["profiles"]["small"]["instance"]["gcp"] = "n2d-standard-2"
        data["profiles"]["small"]["price_per_hour_usd"] = 0.5

    assert problems(priced, target="gcp") == {}


def test_every_profile_is_priced_not_only_those_before_an_override():
    def edit(data):
        data["profiles"]["small"]["price_per_hour_usd"] = 0.1  # the first profile has its own price
        data["profiles"]["large"]["instance"]["aws"] = "m6i.huge"

    assert list(problems(edit, target="aws")) == ["profiles.large.instance.aws"]


def test_aws_gpus_are_priced_with_the_instance_type():
    # aws prices the instance, GPUs included: no accelerator price is looked up, so the profile needs
    # no override; gcp attaches accelerators priced one by one, so an unknown model is an error there.
    assert problems(lambda d: d["profiles"]["gpu"].pop("price_per_hour_usd"), target="aws") == {}

    def unknown_model(data):
        data["profiles"]["gpu"].pop("price_per_hour_usd")
        data["profiles"]["gpu"]["gpu"]["type"] = "nvidia-b200"

    assert "profiles.gpu.gpu.type" in problems(unknown_model, target="gcp")


def test_no_price_lookup_without_a_region():
    found = problems(lambda d: d["cloud"]["aws"].pop("region"), target="aws")
    assert list(found) == ["cloud.aws.region"]  # the missing region only, no price errors on top


@pytest.mark.parametrize("provider", ["github", "oidc"])
def test_a_login_provider_needs_its_block(provider):
    def edit(data):
        data["hub"]["auth"] = {"provider": provider}

    assert problems(edit) == {"hub.auth.provider": f"provider is {provider!r} but hub.auth.{provider} is missing"}


def test_github_login_needs_egress():
    def no_egress(data):
        data["cloud"]["aws"]["egress"] = "none"

    assert problems(no_egress, target="aws") == {
        "hub.auth.provider": "GitHub login needs internet access, but cloud.aws.egress is 'none'; use `oidc` "
        "with an identity provider reachable from the VPC, or egress: nat"
    }
    assert problems(no_egress) == {}  # target local: the aws block is not used

    def oidc(data):
        no_egress(data)
        data["hub"]["auth"] = {"provider": "oidc", "oidc": {"issuer": "https://id.example.org", "client_id": "x"}}

    assert problems(oidc, target="aws") == {}


def test_a_self_hosted_runner_needs_aws_with_egress():
    def self_hosted(data):
        data["ci"]["runner"] = "self-hosted"

    assert problems(self_hosted, target="aws") == {}
    for target in ("local", "gcp"):
        assert problems(self_hosted, target=target) == {
            "ci.runner": "runner 'self-hosted' needs a runner VM, which only target aws renders (target is "
            f"{target!r}): the apply and drift workflows would wait forever; use `runner: github-hosted`"
        }

    def without_egress(data):
        self_hosted(data)
        data["cloud"]["aws"]["egress"] = "none"
        data["hub"]["auth"] = {"provider": "local"}

    assert problems(without_egress, target="aws") == {
        "ci.runner": "the self-hosted runner VM must reach GitHub, but cloud.aws.egress is 'none': the apply "
        "and drift workflows would wait forever; use `runner: github-hosted`, or egress: nat"
    }


def test_an_environment_that_excludes_the_platform_dask_is_refused():
    assert problems(lambda d: d["environments"]["ml"]["packages"].append("distributed<2020")) == {
        "environments.ml.packages[3]": "'distributed<2020' excludes distributed 2026.8.0, the version the platform "
        "runs (schedulers, workers and clients must agree); use distributed==2026.8.0 or leave it unpinned"
    }


@pytest.mark.parametrize("section", ["budgets", "profiles", "environments", "groups"])
def test_a_malformed_section_is_reported_once_not_at_every_reference(section):
    found = problems(lambda d: d.update({section: [1, 2]}))
    assert found and all(field.split(".")[0].split("[")[0] == section for field in found), found


@pytest.mark.parametrize("target", [[], {"aws": 1}, 3])
def test_a_target_of_the_wrong_type_is_only_the_schema_error(target):
    assert list(problems(target=target)) == ["target"]  # not an internal error from a check


def test_an_unknown_target_is_only_the_schema_error():
    def edit(data):
        data["target"] = "azure"
        data["ci"]["runner"] = "self-hosted"

    assert list(problems(edit)) == ["target"]

"""The machine-catalog rules (render/machine_checks.py): each one's error and its allowed
neighbour, at the boundary, on the shared example switched to a cloud target.

The invalid corpus (tests/invalid) pins LINE:COL; here the point is which findings a
change produces, so each test edits the example as data and lists the findings by path.
"""

from __future__ import annotations

import copy
import json

import pytest

from render import catalog, loader, machine_checks
from render.validate import check_document
from tests.conftest import REPO

EXAMPLE = loader.parse((REPO / "platform.yaml").read_text(), "platform.yaml").data


def _platform(target: str = "aws", **edits: object) -> dict:
    """The example on `target`; edits are dotted paths, e.g. profiles.small.cpu=4."""
    data = copy.deepcopy(EXAMPLE)
    data["target"] = target
    if target == "gcp":
        data["profiles"]["gpu"]["memory"] = "30GiB"  # what n1-standard-8 has (the example asks 32GiB)
    for dotted, value in edits.items():
        *parents, last = dotted.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return data


def _findings(data: dict) -> dict[str, tuple[str, str]]:
    """{dotted path: (severity, message)} of every issue, through the real validator."""
    _, issues = check_document(loader.parse(json.dumps(data), "platform.yaml"))
    return {issue.field: (issue.severity, issue.message) for issue in issues}


def _only(data: dict) -> tuple[str, str, str]:
    found = _findings(data)
    assert len(found) == 1, found
    ((path, (severity, message)),) = found.items()
    return path, severity, message


# --- the examples stay valid -------------------------------------------------------------


@pytest.mark.parametrize("target", ["local", "aws"])
def test_example_has_no_findings(target: str) -> None:
    assert _findings(_platform(target)) == {}


def test_example_on_gcp_warns_only_about_the_gpu_profiles_memory() -> None:
    data = copy.deepcopy(EXAMPLE)
    data["target"] = "gcp"
    assert _findings(data) == {
        "profiles.gpu.memory": (
            "warning",
            "memory: 32GiB is more than n1-standard-8 has (30GiB) (did you mean 'n1-standard-16'?); a profile may "
            "ask for less than its machine type has, never more; workers would be killed for memory before Dask "
            "can spill",
        )
    }


def test_every_profile_of_the_example_exists_in_its_region_on_both_clouds() -> None:
    for cloud in catalog.CLOUDS:
        region = EXAMPLE["cloud"][cloud]["region"]
        kinds = [EXAMPLE["hub"]["instance"][cloud]] + [p["instance"][cloud] for p in EXAMPLE["profiles"].values()]
        for kind in kinds:
            machine = catalog.load(cloud).machine(kind)
            assert machine is not None and region in machine.regions, (cloud, kind)


# --- unknown types and regions ----------------------------------------------------------


def test_unknown_type_on_a_cloud_that_is_not_the_target_is_still_an_error() -> None:
    path, severity, message = _only(_platform("local", hub__instance={"aws": "t3.lrage", "gcp": "e2-standard-2"}))
    assert (path, severity) == ("hub.instance.aws", "error")
    assert "unknown aws machine type 't3.lrage' (did you mean 't3.large'?)" in message


def test_unknown_type_far_from_any_name_gets_no_suggestion() -> None:
    _, _, message = _only(_platform("aws", profiles__small__instance={"aws": "zz9.qqq", "gcp": "n2-standard-2"}))
    assert "unknown aws machine type 'zz9.qqq' (catalog of" in message and "did you mean" not in message


def test_fit_is_checked_for_the_target_cloud_only() -> None:
    # 32 vCPUs on m6i.large is wrong on aws, but on target local the type only has to exist.
    assert _findings(_platform("local", profiles__small__cpu=32)) == {}
    assert set(_findings(_platform("aws", profiles__small__cpu=32))) == {"profiles.small.cpu"}


def test_unknown_region_is_one_error_with_a_suggestion() -> None:
    path, severity, message = _only(_platform("aws", cloud__aws__region="eu-wst-1"))
    assert (path, severity) == ("cloud.aws.region", "error")
    assert "did you mean 'eu-west-1'" in message and "us-east-1" in message


def test_a_known_region_outside_the_price_table_is_no_region_error() -> None:
    found = _findings(_platform("aws", cloud__aws__region="ap-south-1"))
    assert "cloud.aws.region" not in found
    assert {path for path in found} == {"profiles.small.instance.aws", "profiles.large.instance.aws"}  # prices


def test_type_not_offered_in_region_names_where_it_is() -> None:
    data = _platform("aws", profiles__large__instance={"aws": "hpc7g.16xlarge", "gcp": "n2-standard-16"})
    data["profiles"]["large"].update(price_per_hour_usd=1.0, spot=False)
    path, severity, message = _only(data)
    assert (path, severity) == ("profiles.large.instance.aws", "error")
    assert "'hpc7g.16xlarge' is not offered in us-west-2" in message and "us-east-1" in message


def test_type_not_offered_in_region_suggests_a_size_that_is() -> None:
    machines = catalog.load("gcp")
    region = "asia-northeast2"
    assert region not in machines.machine("c4-standard-144").regions
    data = _platform("gcp", cloud__gcp__region=region)
    data["profiles"]["large"]["instance"]["gcp"] = "c4-standard-144"
    message = _findings(data)["profiles.large.instance.gcp"][1]
    assert "not offered in asia-northeast2 (did you mean 'c4-standard-192'?)" in message


# --- zones ------------------------------------------------------------------------------


def test_zones_up_to_what_the_region_has() -> None:
    zones = len(catalog.load("aws").zones["us-west-2"])
    assert zones == 4
    assert _findings(_platform("aws", cloud__aws__zones=zones)) == {}
    path, severity, message = _only(_platform("aws", cloud__aws__zones=zones + 1))
    assert (path, severity) == ("cloud.aws.zones", "error") and "(did you mean 4?)" in message


# --- cpu, memory ------------------------------------------------------------------------


def test_cpu_up_to_the_types_vcpus() -> None:
    assert _findings(_platform("aws", profiles__large__cpu=16)) == {}  # m6i.4xlarge: 16 vCPUs
    assert _findings(_platform("aws", profiles__large__cpu=1)) == {}
    path, severity, message = _only(_platform("aws", profiles__large__cpu=17))
    assert (path, severity) == ("profiles.large.cpu", "error")
    assert "cpu: 17 is more than m6i.4xlarge has (16 vCPUs) (did you mean 'm6i.8xlarge'?)" in message


def test_memory_up_to_the_types_memory() -> None:
    assert _findings(_platform("aws", profiles__small__memory="8GiB")) == {}  # m6i.large: 8 GiB
    assert _findings(_platform("aws", profiles__small__memory="512MiB")) == {}
    path, severity, _ = _only(_platform("aws", profiles__small__memory="8193MiB"))
    assert (path, severity) == ("profiles.small.memory", "warning")  # within a GB/GiB slip


def test_memory_past_a_unit_slip_is_an_error() -> None:
    slip = 8 * 1024 * machine_checks.MEMORY_UNIT_SLIP  # MiB
    _, severity, _ = _only(_platform("aws", profiles__small__memory=f"{int(slip)}MiB"))
    assert severity == "warning"
    _, severity, message = _only(_platform("aws", profiles__small__memory=f"{int(slip) + 1}MiB"))
    assert severity == "error" and "killed" not in message and "(did you mean 'm6i.xlarge'?)" in message


def test_bigger_type_suggested_keeps_the_series() -> None:
    found = _findings(_platform("gcp", profiles__large__cpu=24, profiles__large__memory="90GiB"))
    assert set(found) == {"profiles.large.cpu", "profiles.large.memory"}
    assert all("(did you mean 'n2-standard-32'?)" in message for _, message in found.values())


def test_no_bigger_type_means_no_suggestion() -> None:
    data = _platform("aws", profiles__large__cpu=1024, profiles__large__memory="64GiB")
    _, _, message = _only(data)
    assert "did you mean" not in message


# --- GPUs -------------------------------------------------------------------------------


def test_gpu_count_up_to_the_types_gpus() -> None:
    data = _platform("aws", profiles__gpu__instance={"aws": "g4dn.12xlarge", "gcp": "n1-standard-8"})
    data["profiles"]["gpu"]["gpu"] = {"count": 4, "type": "nvidia-t4"}
    assert _findings(data) == {}
    data["profiles"]["gpu"]["gpu"]["count"] = 2  # less than the type has: fine
    assert _findings(data) == {}
    data["profiles"]["gpu"]["gpu"]["count"] = 5
    path, severity, message = _only(data)
    assert (path, severity) == ("profiles.gpu.gpu.count", "error") and "(4 x nvidia-t4)" in message


@pytest.mark.parametrize("name", ["nvidia-t4", "nvidia-tesla-t4", "NVIDIA-T4".lower()])
def test_gpu_names_are_normalised(name: str) -> None:
    data = _platform("aws")
    data["profiles"]["gpu"]["gpu"]["type"] = name
    assert _findings(data) == {}


def test_gpu_model_mismatch_on_a_type_with_gpus() -> None:
    data = _platform("aws")
    data["profiles"]["gpu"]["gpu"]["type"] = "nvidia-l4"
    path, severity, message = _only(data)
    assert (path, severity) == ("profiles.gpu.gpu.type", "error") and "did you mean 'nvidia-t4'" in message


def test_gpu_asked_of_a_type_without_any() -> None:
    data = _platform("aws", profiles__gpu__instance={"aws": "m6i.2xlarge", "gcp": "n1-standard-8"})
    path, _, message = _only(data)
    assert path == "profiles.gpu.gpu" and message.startswith("m6i.2xlarge has no GPUs; types with nvidia-t4: g4dn.")


def test_gpu_unknown_everywhere_gets_a_name_suggestion() -> None:
    data = _platform("aws", profiles__gpu__instance={"aws": "m6i.2xlarge", "gcp": "n1-standard-8"})
    data["profiles"]["gpu"]["gpu"]["type"] = "nvidia-a10"
    _, _, message = _only(data)
    assert "did you mean 'nvidia-a10g'" in message


def test_gcp_attached_gpu_counts_and_family() -> None:
    data = _platform("gcp")
    assert _findings(data) == {}  # n1-standard-8 + 1 x T4
    for count in (2, 4):
        data["profiles"]["gpu"]["gpu"]["count"] = count
        assert _findings(data) == {}
    data["profiles"]["gpu"]["gpu"]["count"] = 8
    path, _, message = _only(data)
    assert path == "profiles.gpu.gpu.count" and "a VM takes 1, 2, 4 x nvidia-t4, not 8" in message
    data["profiles"]["gpu"]["gpu"]["count"] = 1
    data["profiles"]["gpu"]["instance"]["gcp"] = "n2-standard-8"
    data["profiles"]["gpu"]["memory"] = "32GiB"
    path, _, message = _only(data)
    assert path == "profiles.gpu.gpu.type" and "attaches only to n1-*" in message


def test_gcp_v100_allows_eight() -> None:
    data = _platform("gcp", profiles__gpu__instance={"aws": "g4dn.2xlarge", "gcp": "n1-standard-8"})
    data["profiles"]["gpu"]["gpu"] = {"count": 8, "type": "nvidia-v100"}
    assert "profiles.gpu.gpu.count" not in _findings(data)


@pytest.mark.parametrize(
    ("kind", "gpu", "count"),
    [
        ("g2-standard-24", "nvidia-l4", 2),
        ("a2-ultragpu-1g", "nvidia-a100-80gb", 1),
        ("a3-highgpu-2g", "nvidia-h100", 2),
    ],
)
def test_gcp_built_in_gpus(kind: str, gpu: str, count: int) -> None:
    data = _platform("gcp")
    data["profiles"]["gpu"].update(instance={"aws": "g4dn.2xlarge", "gcp": kind}, gpu={"count": count, "type": gpu})
    assert _findings(data) == {}
    data["profiles"]["gpu"]["gpu"]["count"] = count + 1
    assert set(_findings(data)) == {"profiles.gpu.gpu.count"}


def test_gcp_gpu_not_offered_in_the_region() -> None:
    region = "europe-west6"
    assert region not in catalog.load("gcp").accelerators["nvidia-t4"].regions
    data = _platform("gcp", cloud__gcp__region=region)
    for profile in data["profiles"].values():
        profile["price_per_hour_usd"] = 1.0
    path, _, message = _only(data)
    assert path == "profiles.gpu.gpu.type" and "nvidia-tesla-t4 is not offered in europe-west6" in message


# --- spot and the hub (warnings) --------------------------------------------------------


def test_spot_on_a_type_without_a_spot_market_warns() -> None:
    data = _platform("aws")
    data["profiles"]["large"].update(instance={"aws": "m8ine.4xlarge", "gcp": "n2-standard-16"}, price_per_hour_usd=1)
    path, severity, _ = _only(data)
    assert (path, severity) == ("profiles.large.spot", "warning")
    data["profiles"]["large"]["spot"] = False
    assert _findings(data) == {}


def test_hub_at_the_minimum_is_fine_below_warns() -> None:
    assert _findings(_platform("aws", hub__instance={"aws": "t3.medium", "gcp": "e2-standard-2"})) == {}
    path, severity, message = _only(_platform("aws", hub__instance={"aws": "t3.small", "gcp": "e2-standard-2"}))
    assert (path, severity) == ("hub.instance.aws", "warning")
    assert "at least 2 vCPUs and 4GiB (did you mean 't3.medium'?)" in message


def test_hub_with_one_vcpu_warns_even_with_memory() -> None:
    one_vcpu = catalog.load("gcp").machine("c4a-highmem-1")
    assert one_vcpu.vcpus == 1 and one_vcpu.memory_mib >= 4096
    path, severity, _ = _only(_platform("gcp", hub__instance={"aws": "t3.large", "gcp": "c4a-highmem-1"}))
    assert (path, severity) == ("hub.instance.gcp", "warning")


def test_hub_size_is_not_checked_off_target() -> None:
    assert _findings(_platform("local", hub__instance={"aws": "t3.nano", "gcp": "e2-micro"})) == {}


def test_type_not_offered_in_region_is_not_also_a_price_error() -> None:
    data = _platform("aws", profiles__large__instance={"aws": "hpc7g.16xlarge", "gcp": "n2-standard-16"})
    data["profiles"]["large"]["spot"] = False  # no price_per_hour_usd: the table has no hpc7g either
    assert set(_findings(data)) == {"profiles.large.instance.aws"}


def test_unknown_gcp_region_is_not_also_a_gpu_price_error() -> None:
    data = _platform("gcp", cloud__gcp__region="us-centrl1")
    del data["profiles"]["gpu"]["price_per_hour_usd"]  # the GPU's price would be looked up per region
    assert set(_findings(data)) == {"cloud.gcp.region"}


def test_a_gpu_type_of_the_wrong_kind_is_the_schemas_error_alone() -> None:
    data = _platform("aws")
    data["profiles"]["gpu"]["gpu"]["type"] = 4
    assert set(_findings(data)) == {"profiles.gpu.gpu.type"}  # pydantic's "expected a string"


@pytest.mark.parametrize("extra", [0, 1])
def test_regions_offering_a_type_are_listed_up_to_a_limit(extra: int) -> None:
    machines = catalog.load("aws")
    wanted = machine_checks.REGIONS_LISTED + extra
    kind, region = next(
        (m.name, region)
        for m in machines.machines()
        if len(m.regions) == wanted and not m.gpus
        for region in machines.regions
        if region not in m.regions
    )
    data = _platform("aws", cloud__aws__region=region)
    data["profiles"]["small"]["instance"]["aws"] = kind
    message = _findings(data)["profiles.small.instance.aws"][1]
    assert message.count(", ") >= machine_checks.REGIONS_LISTED - 1
    assert ("more" in message) == bool(extra) and (" and 1 more" in message) == bool(extra)

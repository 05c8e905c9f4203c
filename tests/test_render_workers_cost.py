"""Worker templates, cost.json and the price check, for the example on every target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.build_dir import load_for_target
from modules import naming
from render import prices
from render.build import render
from render.cost import render_cost
from render.errors import ConfigErrors
from render.validate import validate_text
from render.workers import render_workers


@pytest.fixture
def example(tmp_path: Path, example_text: str) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text(example_text)
    return path


def workers(example: Path, target: str) -> dict[str, dict]:
    files = render_workers(load_for_target(example, "platform.yaml", target), target)
    return {path.removeprefix("workers/").removesuffix(".json"): json.loads(data) for path, data in files.items()}


def cost(example: Path, target: str, terraform: dict | None = None) -> dict:
    platform = load_for_target(example, "platform.yaml", target)
    return json.loads(render_cost(platform, target, terraform)["cost.json"])


def test_local_worker_templates(example: Path) -> None:
    local = workers(example, "local")
    assert set(local) == {"small", "large", "gpu"}
    assert local["small"] == {
        "profile": "small",
        "target": "local",
        "cores": 2,
        "threads": 2,
        "memory_limit_bytes": 8 * 1024**3,
        "gpu": None,
        "price_per_hour_usd": 0.0,
    }
    assert local["gpu"]["gpu"] == {"count": 1, "type": "nvidia-t4"}
    assert local["gpu"]["price_per_hour_usd"] == 0.752  # the override holds everywhere


def test_aws_worker_templates(example: Path) -> None:
    aws = workers(example, "aws")
    assert aws["large"]["instance_type"] == "m6i.4xlarge"
    assert aws["large"]["spot"] is True and aws["small"]["spot"] is False
    assert aws["large"]["launch_template_name"] == "oceanlab-large"
    assert aws["large"]["launch_template_id_output"] == "launch_template_id_large"
    assert aws["small"]["price_per_hour_usd"] == 0.096
    assert aws["large"]["price_per_hour_usd"] == round(0.768 * prices.spot_factor("aws"), 4)


def test_gcp_worker_templates(example: Path) -> None:
    gcp = workers(example, "gcp")
    assert gcp["gpu"]["machine_type"] == "n1-standard-8"
    assert gcp["gpu"]["instance_template_name"] == "oceanlab-gpu"
    assert gcp["large"]["spot"] is True
    assert gcp["small"]["project"] == "oceanlab-prod"


@pytest.mark.parametrize(
    "target,output", [("aws", naming.launch_template_id_output), ("gcp", naming.instance_template_output)]
)
def test_worker_templates_name_outputs_the_stack_really_has(example: Path, target: str, output) -> None:
    files = render(load_for_target(example, "platform.yaml", target), target)
    stack = json.loads(files[f"terraform/{target}/main.tf.json"])
    for profile in ("small", "large", "gpu"):
        assert output(profile) in stack.get("output", {}), f"{target} stack lacks output {output(profile)}"


def test_template_names_are_valid_for_both_clouds() -> None:
    assert naming.worker_template_name("oceanlab", "big_gpu").startswith("oceanlab-big-gpu-")
    long = naming.worker_template_name("a" * 31, "p" * 63)
    assert len(long) <= 63 and long != naming.worker_template_name("a" * 31, "p" * 62 + "q")


def test_cost_local_is_free_but_honours_overrides(example: Path) -> None:
    local = cost(example, "local")
    assert local["fixed_monthly"] == {"items": {}, "total_usd": 0}
    assert local["profiles"]["small"]["price_per_hour_usd"] == 0.0
    assert local["profiles"]["gpu"]["price_per_hour_usd"] == 0.752
    assert local["price_table_date"] == prices.date()


def test_cost_aws_example_values(example: Path) -> None:
    aws = cost(example, "aws")
    assert aws["region"] == "us-west-2" and aws["price_table_date"] == prices.date()
    hub = aws["fixed_monthly"]["items"]["hub instance"]
    assert (hub["detail"], hub["monthly_usd"]) == ("t3.large", round(0.0832 * 730, 2))
    profiles = aws["profiles"]
    assert profiles["small"]["price_per_hour_usd"] == 0.096
    assert profiles["large"]["on_demand_per_hour_usd"] == 0.768
    assert profiles["large"]["price_per_hour_usd"] == round(0.768 * 0.35, 4)
    assert profiles["gpu"]["price_per_hour_usd"] == 0.752
    assert profiles["gpu"]["on_demand_per_hour_usd"] == 0.752  # g4dn.2xlarge list price
    assert profiles["gpu"]["source"] == "price_per_hour_usd in platform.yaml"


def test_cost_gcp_adds_gpus_to_the_machine_type(example: Path, tmp_path: Path) -> None:
    text = example.read_text().replace("    price_per_hour_usd: 0.752", "")
    path = tmp_path / "nogpuprice.yaml"
    path.write_text(text)
    gpu = cost(path, "gcp")["profiles"]["gpu"]
    assert gpu["price_per_hour_usd"] == round(prices.instance_hourly("gcp", "us-central1", "n1-standard-8") + 0.35, 4)


def test_cost_counts_billable_resources_of_the_rendered_stack(example: Path) -> None:
    # A hand-made stack (not the real renderer's) to pin the counting rules.
    stack = {
        "resource": {
            "aws_nat_gateway": {"a": {}, "b": {}},
            "aws_lb": {"hub": {}},
            "aws_vpc_endpoint": {
                "s3": {"vpc_endpoint_type": "Gateway"},
                "sts": {"vpc_endpoint_type": "Interface", "subnet_ids": ["x", "y"]},
                "logs": {"vpc_endpoint_type": "Interface", "subnet_ids": "${aws_subnet.private[*].id}"},
            },
        }
    }
    aws = cost(example, "aws", {"terraform/aws/main.tf.json": json.dumps(stack).encode()})
    items = aws["fixed_monthly"]["items"]
    region = prices.region_prices("aws", "us-west-2")
    assert items["NAT gateway"]["count"] == 2
    assert items["NAT gateway"]["monthly_usd"] == round(2 * region["nat_gateway_monthly"], 2)
    assert items["load balancer"]["count"] == 1
    assert items["interface endpoint (per zone)"]["count"] == 2 + 2  # 2 listed subnets + zones: 2
    assert aws["fixed_monthly"]["total_usd"] == round(sum(i["monthly_usd"] for i in items.values()), 2)


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_cost_of_the_real_stack(example: Path, target: str) -> None:
    files = render(load_for_target(example, "platform.yaml", target), target)
    document = json.loads(files["cost.json"])
    items = document["fixed_monthly"]["items"]
    assert {"hub instance", "NAT gateway", "load balancer"} <= set(items)  # egress: nat, a hub behind an LB
    assert document["fixed_monthly"]["total_usd"] == round(sum(i["monthly_usd"] for i in items.values()), 2)
    assert document["fixed_monthly"]["total_usd"] > items["hub instance"]["monthly_usd"]


def _aws(example_text: str, small_instance: str, *, price: str = "", region: str = "us-west-2") -> str:
    text = example_text.replace("target: local ", "target: aws   ").replace("region: us-west-2", f"region: {region}")
    return text.replace(
        "    instance: { aws: m6i.large, gcp: n2-standard-2 }",
        f"    instance: {{ aws: {small_instance}, gcp: n2-standard-2 }}{price}",
    )


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        validate_text(text)
    return [str(issue) for issue in caught.value.issues]


def test_unpriced_instance_is_a_located_error(example_text: str) -> None:
    """m7a.large exists in us-west-2 (machine catalog) but not in the price table."""
    text = _aws(example_text, "m7a.large")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "m7a.large" in row)
    col = text.splitlines()[line - 1].index("m7a.large") + 1
    assert _errors(text) == [
        f"platform.yaml:{line}:{col}: profiles.small.instance.aws: no known price for aws instance type "
        f"'m7a.large' in us-west-2 in the price table of {prices.date()} (did you mean 'm7i.large'?); "
        "set `price_per_hour_usd:` on profile 'small'"
    ]


def test_unknown_instance_is_one_error_not_also_a_price_error(example_text: str) -> None:
    (error,) = _errors(_aws(example_text, "m6i.lrage"))
    assert "unknown aws machine type 'm6i.lrage' (did you mean 'm6i.large'?)" in error


def test_override_makes_an_unpriced_instance_acceptable(example_text: str) -> None:
    platform = validate_text(_aws(example_text, "m7a.large", price="\n    price_per_hour_usd: 1.5"))
    assert platform.profiles["small"].price_per_hour_usd == 1.5


def test_region_outside_the_table_names_the_covered_regions(example_text: str) -> None:
    errors = _errors(_aws(example_text, "m6i.large", region="ap-south-1"))
    assert len(errors) == 2  # small and large; gpu has an override
    assert all("ap-south-1 is not in the price table" in e and "us-east-1" in e for e in errors)


def test_local_target_needs_no_prices(example_text: str) -> None:
    validate_text(example_text.replace("m6i.large", "m7a.large"))


def test_gcp_unknown_gpu_price_is_located(example_text: str) -> None:
    text = example_text.replace("target: local ", "target: gcp   ")
    text = text.replace("    price_per_hour_usd: 0.752", "").replace("type: nvidia-t4", "type: nvidia-p100")
    text = text.replace("memory: 32GiB", "memory: 30GiB")  # what n1-standard-8 has
    errors = _errors(text)
    assert len(errors) == 1 and "profiles.gpu.gpu.type: no known price for gcp GPU 'nvidia-p100'" in errors[0]


def test_cost_of_the_real_aws_stack_without_egress(example: Path) -> None:
    example.write_text(
        example.read_text()
        .replace("egress: nat                 #", "egress: none                #", 1)
        .replace("provider: github ", "provider: local  ", 1)  # GitHub login needs egress
    )
    files = render(load_for_target(example, "platform.yaml", "aws"), "aws")
    items = json.loads(files["cost.json"])["fixed_monthly"]["items"]
    assert "NAT gateway" not in items
    stack = json.loads(files["terraform/aws/main.tf.json"])
    interface = [e for e in stack["resource"]["aws_vpc_endpoint"].values() if e.get("vpc_endpoint_type") == "Interface"]
    assert interface, "egress: none needs interface endpoints"
    assert items["interface endpoint (per zone)"]["count"] == len(interface) * 2  # zones: 2

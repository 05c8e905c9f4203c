"""The schema contract rendered for gcp (its variants: egress nat or none, long names) and
what the GCP render tests read of the stack; the hashicorp/google provider schema check
(scripts/extract_google_schema.py keeps the variants' types in tests/data)."""

from __future__ import annotations

import json
import tempfile
from functools import cache
from pathlib import Path

from ruamel.yaml import YAML

from render.schema import Platform
from render.terraform_gcp import synthesize_gcp
from render.validate import load_platform
from tests.support.terraform import set_egress

REPO = Path(__file__).resolve().parents[2]
SHARED_EXAMPLE = REPO.parent / "shared" / "platform.example.yaml"
META_ARGUMENTS = {"count", "depends_on", "for_each", "lifecycle", "provider", "connection", "provisioner"}


def example_platform(egress: str = "nat", edit=None) -> Platform:
    """The shared example with `target: gcp` (and the given egress), loaded for real."""
    source = SHARED_EXAMPLE if SHARED_EXAMPLE.exists() else REPO / "platform.yaml"
    yaml = YAML()
    data = yaml.load(source.read_text())
    data["target"] = "gcp"
    set_egress(data, "gcp", egress)
    if edit:
        edit(data)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "platform.yaml"
        with path.open("w") as stream:
            yaml.dump(data, stream)
        return load_platform(path)


def example_platforms() -> list[Platform]:
    """Every variant the tests render: the schema extraction script keeps their types."""
    return [example_platform(egress, edit) for egress, edit in VARIANTS.values()]


@cache
def stack(variant: str) -> dict:
    egress, edit = VARIANTS[variant]
    return json.loads(synthesize_gcp(example_platform(egress, edit)))


def resources(rendered: dict, kind: str) -> dict[str, dict]:
    return rendered.get("resource", {}).get(kind, {})


def _type_ok(value: object, declared: object) -> bool:
    if isinstance(value, str) and "${" in value:
        return True  # a reference: Terraform checks it at plan time
    if isinstance(declared, list):
        return isinstance(value, dict) if declared[0] in ("map", "object") else isinstance(value, list)
    if declared == "bool":
        return isinstance(value, bool)
    if declared == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if declared == "string":
        return isinstance(value, str | int | float | bool)  # Terraform converts primitives to strings
    return True


def schema_problems(where: str, value: object, block: dict, *, top: bool = False) -> list[str]:
    """Unknown attributes and blocks, wrong shapes, missing required arguments, recursively."""
    if isinstance(value, list):
        return [problem for index, item in enumerate(value)
                for problem in schema_problems(f"{where}[{index}]", item, block, top=top)]
    if not isinstance(value, dict):
        return [f"{where}: a block must be an object, got {value!r}"]
    problems = []
    attributes, blocks = block["attributes"], block["block_types"]
    for key, item in value.items():
        if key in attributes:
            if not _type_ok(item, attributes[key]["type"]):
                problems.append(f"{where}.{key}: {item!r} is not of type {attributes[key]['type']}")
        elif key in blocks:
            nested = blocks[key]
            if nested["nesting_mode"] == "single" and isinstance(item, list) and len(item) > 1:
                problems.append(f"{where}.{key}: at most one block")
            problems += schema_problems(f"{where}.{key}", item, nested["block"])
        elif not (top and key in META_ARGUMENTS):
            problems.append(f"{where}.{key}: unknown to the provider")
    for key, spec in attributes.items():
        if spec.get("required") and key not in value:
            problems.append(f"{where}.{key}: required attribute missing")
    return problems


def _long_names(data) -> None:
    data["name"] = "a-very-long-platform-name-12345"  # 31 characters, the most allowed
    data["hub"].pop("domain")
    data["profiles"]["big_mem"] = {"cpu": 4, "memory": "64GiB", "instance": {"gcp": "n2-highmem-8"}}
    data["integrations"]["storage"].append(
        {"name": "scratch_area", "bucket": "oceanlab-scratch", "access": {"ocean": "read-write"}}
    )


VARIANTS = {"nat": ("nat", None), "none": ("none", None), "long-names": ("nat", _long_names)}

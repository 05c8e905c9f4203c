"""Thin helpers over cdktf core, shared by the per-cloud constructs.

We use cdktf's `App`/`TerraformStack`/constructs and generic `TerraformResource`s whose
attributes are set with `add_override`, not the prebuilt provider packages (see
ARCHITECTURE.md: ~0.4 s per synth instead of ~12 s). `synthesize` returns readable,
stable Terraform JSON: cdktf's per-resource metadata stripped, keys sorted.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

# jsii prints a Node end-of-life banner on import unless told which majors are fine.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20,21,22")

from cdktf import App, TerraformResource, TerraformStack  # noqa: E402
from constructs import Construct  # noqa: E402


def resource(scope: Construct, name: str, kind: str, attributes: Mapping[str, object]) -> TerraformResource:
    """A Terraform resource of type `kind` named `name`, with `attributes` as given."""
    node = TerraformResource(scope, name, terraform_resource_type=kind)
    for key, value in attributes.items():
        if value is not None:
            node.add_override(key, value)
    return node


def data_source(scope: Construct, name: str, kind: str, attributes: Mapping[str, object]) -> TerraformResource:
    """A Terraform data source (rendered under `data`), e.g. aws_iam_policy_document."""
    from cdktf import TerraformDataSource

    node = TerraformDataSource(scope, name, terraform_resource_type=kind)
    for key, value in attributes.items():
        if value is not None:
            node.add_override(key, value)
    return node


def ref(node: TerraformResource, attribute: str) -> str:
    """A `${type.name.attribute}` reference to another resource's attribute."""
    return node.get_string_attribute(attribute)


def synthesize(stack_name: str, build: Callable[[TerraformStack], None]) -> bytes:
    """Run `build` on a fresh stack and return its Terraform JSON, stable and readable."""
    with tempfile.TemporaryDirectory(prefix="graticule-synth-") as outdir:
        app = App(outdir=outdir, skip_validation=True)
        stack = TerraformStack(app, stack_name)
        build(stack)
        app.synth()
        raw = json.loads((Path(outdir) / "stacks" / stack_name / "cdk.tf.json").read_text())
    return (json.dumps(_strip_metadata(raw), indent=2, sort_keys=True) + "\n").encode()


def _strip_metadata(node: object) -> object:
    """Drop cdktf's "//" comment blocks so pull-request diffs show only real changes."""
    if isinstance(node, dict):
        return {key: _strip_metadata(value) for key, value in node.items() if key != "//"}
    if isinstance(node, list):
        return [_strip_metadata(item) for item in node]
    return node

"""Thin helpers over cdktf core, shared by the per-cloud constructs.

We use cdktf's `App`/`TerraformStack`/constructs and generic `TerraformResource`s whose
attributes are handed over in one callback per resource, not the prebuilt provider packages (see
ARCHITECTURE.md: ~0.4 s per synth instead of ~12 s). `synthesize` returns readable,
stable Terraform JSON: cdktf's per-resource metadata stripped, keys sorted.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# (jsii's Node end-of-life banner is silenced in modules/__init__.py, before any cdktf import.)
from cdktf import App, TerraformDataSource, TerraformResource, TerraformStack
from constructs import Construct

# Terraform meta-arguments: cdktf drops these from `_synthesize_attributes`, so they
# still go through `add_override` (a handful per stack).
_META_ARGUMENTS = frozenset({"depends_on", "lifecycle", "count", "for_each", "provider", "provisioner", "connection"})


def _split(node: TerraformResource | TerraformDataSource, attributes: Mapping[str, object]) -> dict[str, Any]:
    plain = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if key in _META_ARGUMENTS:
            node.add_override(key, value)
        else:
            plain[key] = value
    return plain


class _Resource(TerraformResource):
    """A resource whose attributes cdktf asks for in one call at synth time.

    Setting each attribute with `add_override` costs one round trip to the jsii node
    process per attribute; a large stack has thousands. Overriding the protected
    `_synthesize_attributes` hook costs one callback per resource, same JSON.
    """

    def __init__(self, scope: Construct, name: str, kind: str, attributes: Mapping[str, object]):
        super().__init__(scope, name, terraform_resource_type=kind)
        self._graticule_attributes = _split(self, attributes)

    def _synthesize_attributes(self) -> Mapping[str, Any]:
        return self._graticule_attributes


class _DataSource(TerraformDataSource):
    """The same single-callback trick for data sources (rendered under `data`)."""

    def __init__(self, scope: Construct, name: str, kind: str, attributes: Mapping[str, object]):
        super().__init__(scope, name, terraform_resource_type=kind)
        self._graticule_attributes = _split(self, attributes)

    def _synthesize_attributes(self) -> Mapping[str, Any]:
        return self._graticule_attributes


def resource(
    scope: Construct, name: str, kind: str, attributes: Mapping[str, object], logical_id: str | None = None
) -> TerraformResource:
    """A Terraform resource of type `kind` (construct id `name`), with `attributes` as given;
    addressed as `kind.logical_id` when one is given."""
    return _named(_Resource(scope, name, kind, attributes), f"{kind}.", logical_id)


def data_source(
    scope: Construct, name: str, kind: str, attributes: Mapping[str, object], logical_id: str | None = None
) -> TerraformDataSource:
    """A Terraform data source (rendered under `data`), e.g. aws_iam_policy_document."""
    return _named(_DataSource(scope, name, kind, attributes), f"data.{kind}.", logical_id)


def _named(node, address_prefix: str, logical_id: str | None):
    if logical_id is not None:
        node.override_logical_id(logical_id)
        # Known here, so `ref` need not ask node for the type and id (two round trips).
        node.__dict__["_graticule_address"] = address_prefix + logical_id
    return node


def ref(node: TerraformResource, attribute: str) -> str:
    """A `${type.name.attribute}` reference to another resource's attribute.

    Written as plain text rather than through `get_string_attribute`: each jsii call is a
    round trip to node, and a large stack makes thousands of references (same output,
    about a third less synthesis time); the node's address is asked for once.
    """
    address = node.__dict__.get("_graticule_address")
    if address is None:
        prefix = "data." if isinstance(node, TerraformDataSource) else ""
        address = f"{prefix}{node.terraform_resource_type}.{node.friendly_unique_id}"
        node.__dict__["_graticule_address"] = address
    return f"${{{address}.{attribute}}}"


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

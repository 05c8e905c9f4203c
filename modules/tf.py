"""Thin helpers over cdktf core, shared by the per-cloud constructs.

We use cdktf's `App`/`TerraformStack`/constructs and generic `TerraformResource`s, not the
prebuilt provider packages (see ARCHITECTURE.md: ~0.4 s per synth instead of ~12 s).
Every call into cdktf is a round trip to its node process, slow while node is cold, so
each resource costs two (create it, name it): its body (attributes and meta-arguments)
stays in Python until `synthesize` hands all bodies to the stack in one override, which
cdktf deep-merges into the resources it synthesizes. `synthesize` returns readable,
stable Terraform JSON: cdktf's per-resource metadata stripped, keys sorted.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

# (jsii's Node end-of-life banner is silenced in modules/__init__.py, before any cdktf import.)
from cdktf import App, TerraformDataSource, TerraformResource, TerraformStack
from constructs import Construct

# The blocks of the stack being built: {"resource"|"data": {kind: {logical_id: body}},
# "output": {name: {"value": value}}}.
_BODIES: ContextVar[dict[str, dict[str, Any]] | None] = ContextVar("graticule_tf_bodies", default=None)


def _body(attributes: Mapping[str, object]) -> dict[str, Any]:
    return {key: value for key, value in attributes.items() if value is not None}


def resource(scope: Construct, kind: str, logical_id: str, attributes: Mapping[str, object]) -> TerraformResource:
    """A Terraform resource addressed as `kind.logical_id`, with `attributes` as given."""
    node = TerraformResource(scope, f"{kind}.{logical_id}", terraform_resource_type=kind)
    return _named(node, "resource", kind, logical_id, _body(attributes))


def data_source(scope: Construct, kind: str, logical_id: str, attributes: Mapping[str, object]) -> TerraformDataSource:
    """A Terraform data source (rendered under `data`), e.g. aws_iam_policy_document."""
    node = TerraformDataSource(scope, f"{kind}.{logical_id}", terraform_resource_type=kind)
    return _named(node, "data", kind, logical_id, _body(attributes))


def output(name: str, value: object) -> None:
    """A Terraform output named exactly `name` (a leaf: no construct needed)."""
    _add_block(("output", name), {"value": value})


def _add_block(path: tuple[str, ...], body: dict[str, Any]) -> None:
    blocks = _BODIES.get()
    if blocks is None:
        raise RuntimeError(f"{'.'.join(path)}: Terraform blocks are made inside tf.synthesize()")
    *parents, name = path
    for key in parents:
        blocks = blocks.setdefault(key, {})
    if name in blocks:
        raise ValueError(f"two Terraform blocks at {'.'.join(path)}")
    blocks[name] = body


def _named(node, block: str, kind: str, logical_id: str, body: dict[str, Any]):
    _add_block((block, kind, logical_id), body)
    node.override_logical_id(logical_id)
    # Known here, so `ref` need not ask node for the type and id (two round trips).
    node.__dict__["_graticule_address"] = ("data." if block == "data" else "") + f"{kind}.{logical_id}"
    return node


def ref(node: TerraformResource, attribute: str) -> str:
    """A `${type.name.attribute}` reference to another resource's attribute.

    Written as plain text rather than through `get_string_attribute`, which would be a
    round trip to node per reference: the address is known since the node was named.
    """
    return f"${{{node.__dict__['_graticule_address']}.{attribute}}}"


def synthesize(stack_name: str, build: Callable[[TerraformStack], None]) -> bytes:
    """Run `build` on a fresh stack and return its Terraform JSON, stable and readable."""
    bodies_token = _BODIES.set({})
    try:
        with tempfile.TemporaryDirectory(prefix="graticule-synth-") as outdir:
            app = App(outdir=outdir, skip_validation=True)
            stack = TerraformStack(app, stack_name)
            build(stack)
            for block, kinds in _BODIES.get().items():
                stack.add_override(block, kinds)  # every body in one round trip; see the module doc
            app.synth()
            raw = json.loads((Path(outdir) / "stacks" / stack_name / "cdk.tf.json").read_text())
    finally:
        _BODIES.reset(bodies_token)
    return (json.dumps(_strip_metadata(raw), indent=2, sort_keys=True) + "\n").encode()


def _strip_metadata(node: object) -> object:
    """Drop cdktf's "//" comment blocks so pull-request diffs show only real changes."""
    if isinstance(node, dict):
        return {key: _strip_metadata(value) for key, value in node.items() if key != "//"}
    if isinstance(node, list):
        return [_strip_metadata(item) for item in node]
    return node

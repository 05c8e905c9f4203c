"""Small helpers shared by the AWS constructs: readable resource addresses, ARNs, tags."""

from __future__ import annotations

from collections.abc import Mapping

from cdktf import TerraformResource
from constructs import Construct

from modules import tf


def res(scope: Construct, kind: str, name: str, attributes: Mapping[str, object]) -> TerraformResource:
    """A resource addressed as `kind.name` (no cdktf path hash), so plans and diffs read well.

    Names must be unique per kind across the whole stack; the constructs prefix theirs.
    """
    node = tf.resource(scope, f"{kind}.{name}", kind, attributes)
    node.override_logical_id(name)
    return node


def data(scope: Construct, kind: str, name: str, attributes: Mapping[str, object]) -> TerraformResource:
    node = tf.data_source(scope, f"{kind}.{name}", kind, attributes)
    node.override_logical_id(name)
    return node


def ref(node: TerraformResource, attribute: str) -> str:
    return tf.ref(node, attribute)


def name_tag(name: str, **extra: str) -> dict[str, str]:
    """Per-resource tags; `platform` and `managed-by` come from the provider's default_tags."""
    return {"Name": name, **extra}


def ident(text: str) -> str:
    """A Terraform identifier from a platform.yaml name (names may hold '-', which is fine)."""
    return text.replace(".", "_")

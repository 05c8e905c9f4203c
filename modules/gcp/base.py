"""Small helpers shared by the GCP constructs: readable resource addresses, names."""

from __future__ import annotations

from collections.abc import Mapping

from cdktf import TerraformOutput, TerraformResource
from constructs import Construct

from modules import tf


def res(scope: Construct, kind: str, name: str, attributes: Mapping[str, object]) -> TerraformResource:
    """A resource addressed as `kind.name` (no cdktf path hash), so plans and diffs read well.

    Names must be unique per kind across the whole stack; the constructs prefix theirs.
    """
    node = tf.resource(scope, f"{kind}.{name}", kind, attributes)  # construct ids are unique per scope
    node.override_logical_id(name)
    return node


def data(scope: Construct, kind: str, name: str, attributes: Mapping[str, object]) -> TerraformResource:
    node = tf.data_source(scope, f"{kind}.{name}", kind, attributes)
    node.override_logical_id(name)
    return node


def ref(node: TerraformResource, attribute: str) -> str:
    return tf.ref(node, attribute)


def output(scope: Construct, name: str, value: object) -> None:
    node = TerraformOutput(scope, f"output.{name}", value=value)
    node.override_logical_id(name)


def ident(text: str) -> str:
    """A Terraform identifier from a platform.yaml name."""
    return text.replace(".", "_")


ACCOUNT_ID_MAX = 30


def account_id(platform: str, role: str) -> str:
    """A service account id (6..30 chars): `<platform>-<role>`, the platform cut to fit."""
    return f"{platform[: ACCOUNT_ID_MAX - 1 - len(role)].rstrip('-')}-{role}"


def hub_name(platform: str) -> str:
    """The hub VM's name: the one instance of the platform the hub may not touch."""
    return f"{platform}-hub"

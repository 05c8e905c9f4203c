"""Helpers shared by the AWS and GCP constructs: readable addresses, outputs, providers."""

from __future__ import annotations

from collections.abc import Mapping

from cdktf import TerraformProvider, TerraformProviderGeneratorMetadata, TerraformResource
from constructs import Construct

from modules import tf


def res(scope: Construct, kind: str, name: str, attributes: Mapping[str, object]) -> TerraformResource:
    """A resource addressed as `kind.name` (no cdktf path hash), so plans and diffs read well.

    Names must be unique per kind across the whole stack; the constructs prefix theirs.
    """
    return tf.resource(scope, kind, name, attributes)


def data(scope: Construct, kind: str, name: str, attributes: Mapping[str, object]) -> TerraformResource:
    return tf.data_source(scope, kind, name, attributes)


def ref(node: TerraformResource, attribute: str) -> str:
    return tf.ref(node, attribute)


def output(name: str, value: object) -> None:
    """A Terraform output named exactly `name`."""
    tf.output(name, value)


def ident(text: str) -> str:
    """A Terraform identifier from a platform.yaml name (names may hold '-', which is fine)."""
    return text.replace(".", "_")


def pinned_provider(stack: Construct, name: str, version: str) -> TerraformProvider:
    """The `hashicorp/<name>` provider, pinned to `version` in `terraform.required_providers`."""
    return TerraformProvider(
        stack,
        name,
        terraform_resource_type=name,
        terraform_provider_source=f"hashicorp/{name}",
        terraform_generator_metadata=TerraformProviderGeneratorMetadata(
            provider_name=name, provider_version_constraint=version
        ),
    )


def terraform_literal(text: str) -> str:
    """`text` as a Terraform string literal: a script's `${...}` and `%{` are not templates."""
    return text.replace("${", "$${").replace("%{", "%%{")

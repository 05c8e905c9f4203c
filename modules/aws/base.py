"""Small helpers shared by the AWS constructs: readable resource addresses, tags."""

from __future__ import annotations

from modules.base import data, ident, output, ref, res

# The cloud-neutral helpers are re-exported: the AWS constructs import theirs from one place.
__all__ = ["data", "ident", "name_tag", "output", "ref", "res"]


def name_tag(name: str, **extra: str) -> dict[str, str]:
    """Per-resource tags; `platform` and `managed-by` come from the provider's default_tags."""
    return {"Name": name, **extra}

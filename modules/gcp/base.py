"""Small helpers shared by the GCP constructs: readable resource addresses, names."""

from __future__ import annotations

from modules.base import data, ident, output, ref, res

# The cloud-neutral helpers are re-exported: the GCP constructs import theirs from one place.
__all__ = ["ACCOUNT_ID_MAX", "account_id", "data", "hub_name", "ident", "output", "ref", "res"]

ACCOUNT_ID_MAX = 30


def account_id(platform: str, role: str) -> str:
    """A service account id (6..30 chars): `<platform>-<role>`, the platform cut to fit."""
    return f"{platform[: ACCOUNT_ID_MAX - 1 - len(role)].rstrip('-')}-{role}"


def hub_name(platform: str) -> str:
    """The hub VM's name: the one instance of the platform the hub may not touch."""
    return f"{platform}-hub"

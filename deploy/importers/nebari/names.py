"""Names Nebari allows (display names, e-mails, Keycloak paths) -> graticule names."""

from __future__ import annotations

import re

from render import units

_IDENTIFIER = re.compile(units.IDENTIFIER_PATTERN)


def slug(text: str, fallback: str = "x") -> str:
    """'Small Instance' -> 'small-instance'; always matches platform.yaml's name pattern."""
    name = re.sub(r"[^a-z0-9_-]+", "-", text.strip().lower()).strip("-_")
    name = re.sub(r"-{2,}", "-", name)
    if not name or not name[0].isalpha():
        name = f"{fallback}-{name}".rstrip("-")
    return name[:63].rstrip("-_")


def dns_name(text: str) -> str:
    """A platform name: lower-case letters, digits and '-', 2..31 chars, starting with a letter."""
    name = slug(text, "p").replace("_", "-")
    name = re.sub(r"-{2,}", "-", name)[:31].rstrip("-")
    return name if len(name) >= 2 else f"{name}-p"


def unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate = f"{name[:60]}-{number}"
        number += 1
    taken.add(candidate)
    return candidate

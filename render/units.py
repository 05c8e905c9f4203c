"""Parsers for the units platform.yaml speaks: memory sizes, durations, DNS-safe names.

Each parser takes the user's text and returns a plain number, raising ValueError with a
message that says what would be right; pydantic turns that into a located error.
"""

from __future__ import annotations

import re

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)\s*$")
_MEMORY_FACTORS = {
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
}
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_DURATION_FACTORS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

MEMORY_PATTERN = r"^\s*\d+(\.\d+)?\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)\s*$"
DURATION_PATTERN = r"^\s*\d+\s*(s|m|h|d)\s*$"
DNS_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,29}[a-z0-9]$"
IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"


def parse_memory(text: object) -> int:
    """'8GiB' -> 8589934592 bytes."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f"expected a size such as '8GiB' or '512MiB', got {text!r}")
    match = _MEMORY.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size: use a number and a unit, e.g. '8GiB', '512MiB'")
    number, unit = match.groups()
    size = int(float(number) * _MEMORY_FACTORS[unit])
    if size <= 0:
        raise ValueError(f"{text!r}: a size must be greater than zero")
    return size


def parse_duration(text: object) -> int:
    """'20m' -> 1200 seconds."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f"expected a duration such as '20m', '1h' or '7d', got {text!r}")
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration: use e.g. '30s', '20m', '1h', '7d'")
    number, unit = match.groups()
    seconds = int(number) * _DURATION_FACTORS[unit]
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be greater than zero")
    return seconds


def format_memory(size: int) -> str:
    """8589934592 -> '8GiB' (the largest binary unit that divides evenly)."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        factor = _MEMORY_FACTORS[unit]
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def format_duration(seconds: int) -> str:
    """1200 -> '20m'."""
    for unit in ("d", "h", "m"):
        factor = _DURATION_FACTORS[unit]
        if seconds % factor == 0:
            return f"{seconds // factor}{unit}"
    return f"{seconds}s"

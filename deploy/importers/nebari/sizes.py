"""Kubernetes sizes as Nebari writes them -> graticule's whole CPUs and binary memory."""

from __future__ import annotations

import math
import re

from render import units

_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?|[kMGTP]B?|)\s*$")
_BINARY = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}


def cpus(value: object) -> tuple[int, bool]:
    """Whole CPUs (rounded up) and whether rounding changed the value; '500m' is 0.5."""
    if isinstance(value, str) and value.strip().endswith("m"):
        number = float(value.strip()[:-1]) / 1000
    else:
        number = float(value)  # type: ignore[arg-type]
    whole = max(1, math.ceil(number))
    return whole, whole != number


def memory(value: object) -> int:
    """Bytes. Nebari's `8G` means 8 GiB (1024-based), like `8Gi`; a bare number is bytes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    match = _QUANTITY.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a memory size")
    number, unit = match.groups()
    return int(float(number) * _BINARY[unit[:1].upper()])


def memory_text(size: int) -> str:
    """Bytes -> '8GiB', rounded up to whole MiB so the text stays short."""
    mib = 1024**2
    return units.format_memory(math.ceil(size / mib) * mib)

"""What a check reports: a path into the loaded tree, a message, and how bad it is.

Errors make `platform validate` exit 2; warnings are printed and fail only `--strict`
(what CI runs). Shared by every module of checks, with the "did you mean" helper.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

Path_ = tuple[object, ...]


@dataclass(frozen=True)
class Finding:
    path: Path_
    message: str
    at_key: bool = False
    severity: str = "error"


def mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def suggest(word: object, choices: list[str]) -> str:
    """' (did you mean 'ocean'?)' when a close name exists, else ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""

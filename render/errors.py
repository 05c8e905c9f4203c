"""Located configuration errors: `platform.yaml:LINE:COL: dotted.path: message`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, order=True)
class ConfigIssue:
    """One problem in a config file, at a 1-based line and column."""

    file: str
    line: int
    col: int
    field: str
    message: str
    severity: str = "error"  # or "warning": printed, fails only `validate --strict`

    def __str__(self) -> str:
        message = " ".join(self.message.split())  # one error, one line
        label = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.col}: {self.field}: {label}{message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "path": self.field,
            "message": self.message,
            "severity": self.severity,
        }


class ConfigErrors(Exception):
    """Every problem found in a config file, sorted by position."""

    def __init__(self, issues: Iterable[ConfigIssue], warnings: Iterable[ConfigIssue] = ()):
        self.issues = sorted(set(issues))
        self.warnings = sorted(set(warnings))  # found alongside; `platform validate` shows them too
        super().__init__("\n".join(str(issue) for issue in self.issues))


def dotted(path: tuple[object, ...]) -> str:
    """('users', 0, 'groups') -> 'users[0].groups'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.match(str(part)):  # odd keys quoted, so the error stays one line
            text += f"[{json.dumps(str(part))}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(root)"


class MissingPrerequisite(Exception):
    """A program the render needs is not installed (e.g. Node.js for cdktf); says what to install."""

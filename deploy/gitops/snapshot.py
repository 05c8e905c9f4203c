"""One side of a pull request, read from a build directory.

CI renders base and head into two directories; besides the rendered files each may hold
`validation.json` (`platform validate --json`), `plan.json` (`platform plan --json`),
`plan-error.txt` (the plan's short error) and `platform.yaml` (the source it was rendered
from, so that the comment can describe the change in the platform's own terms).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from render.errors import ConfigErrors
from render.schema import Platform
from render.validate import load_platform

SIDE_FILES = ("validation.json", "plan.json", "plan-error.txt", "platform.yaml", "environments.lock")


@dataclass(frozen=True)
class Snapshot:
    files: dict[str, bytes]
    platform: Platform | None = None
    validation: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    plan_error: str | None = None

    @property
    def cost(self) -> dict[str, Any] | None:
        raw = self.files.get("cost.json")
        return _json(raw.decode()) if raw else None


def read(directory: Path | None) -> Snapshot:
    """The snapshot in `directory`; an absent directory is an empty snapshot (no base yet)."""
    if directory is None or not directory.is_dir():
        return Snapshot(files={})
    files = {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and ".terraform" not in path.parts
    }
    for name in SIDE_FILES:
        files.pop(name, None)
    platform = None
    source = directory / "platform.yaml"
    if source.is_file():
        try:
            platform = load_platform(source, display="platform.yaml")
        except ConfigErrors:
            platform = None
    error = directory / "plan-error.txt"
    return Snapshot(
        files=files,
        platform=platform,
        validation=_json_file(directory / "validation.json"),
        plan=_json_file(directory / "plan.json"),
        plan_error=error.read_text().strip() or None if error.is_file() else None,
    )


def _json_file(path: Path) -> dict[str, Any] | None:
    return _json(path.read_text()) if path.is_file() else None


def _json(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None

"""Where a platform runs: `Target` and its `local` and `cloud` implementations.

The CLI asks `target_for(platform, ...)` and calls the same methods whatever the target;
it never branches on `platform.target` itself.
"""

from __future__ import annotations

from pathlib import Path

from deploy.targets.base import Outcome, Preview, Progress, Target
from deploy.targets.cloud import CloudTarget
from deploy.targets.local import LocalTarget
from render.schema import Platform

__all__ = ["CloudTarget", "LocalTarget", "Outcome", "Preview", "Progress", "Target", "target_for"]


def target_for(platform: Platform, config_path: Path, *, out: str = "build", state: str | None = None) -> Target:
    if platform.target == "local":
        return LocalTarget(config_path, Path(state) if state else None, platform=platform, out=out)
    return CloudTarget(platform, out=out, state=state, config_path=config_path)

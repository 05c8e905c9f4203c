"""The `Target` protocol: what every place a platform can run offers the CLI.

`plan` summarizes what `apply` would change; `preview` + `apply` / `destroy` are the
two steps the CLI puts a confirmation between; `up`, `down`, `status`, `logs` (and
`log_path` where logs are files here) and `token` run and inspect the platform's hub and
gateway. Nothing here prints: progress
goes to the `progress` callable the CLI passes, results come back as data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from deploy.local.results import ComponentStatus, DownResult, UpResult

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Preview:
    """What `apply` or `destroy` is about to do, shown (and maybe confirmed) first."""

    text: str = ""
    changes: bool = True
    needs_confirmation: bool = True  # when there are changes and nobody said yes beforehand
    handle: Any = None  # the target's own state between preview and apply


@dataclass
class Outcome:
    message: str
    warnings: list[str] = field(default_factory=list)  # for stderr, each with its prefix
    up: UpResult | None = None  # when the platform was brought up here (the CLI says how to log in)


class Target(Protocol):
    name: str

    def plan(self, progress: Progress) -> dict: ...

    def preview(self, progress: Progress, *, destroy: bool = False) -> Preview: ...

    def apply(self, preview: Preview, progress: Progress) -> Outcome: ...

    def destroy(self, preview: Preview, progress: Progress) -> Outcome: ...

    def up(self, *, hub_port: int | None = None, gateway_port: int | None = None,
           timeout: float = 180.0) -> UpResult: ...

    def down(self) -> DownResult: ...

    def status(self) -> list[ComponentStatus]: ...

    def log_path(self, which: str) -> Path | None: ...

    def logs(self, which: str, *, lines: int, follow: bool) -> Iterator[str]: ...

    def token(self, username: str) -> str: ...

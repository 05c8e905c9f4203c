"""Target local: the platform's real hub and gateway on this machine (`deploy.local`).

There is nothing to plan: `apply` is `up`, `destroy` is `down`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from deploy.errors import RuntimeFailure, UserError
from deploy.gitops.plan_summary import empty
from deploy.local import supervisor
from deploy.local.results import ComponentStatus, DownResult, UpResult
from deploy.runtime.state import state_dir_for
from deploy.targets.base import Outcome, Preview, Progress
from render.schema import Platform

NOTHING_TO_PLAN = "Target local: nothing to plan; `platform apply` runs it on this machine."


class LocalTarget:
    name = "local"

    def __init__(self, config_path: Path, state: Path | None = None, *, platform: Platform | None = None,
                 out: str = "build") -> None:
        self.config_path, self.state, self.platform, self.out = Path(config_path), state, platform, out

    @property
    def state_dir(self) -> Path:
        if self.state is not None:
            return Path(self.state).absolute()
        if self.platform is None:
            raise ValueError("the state directory of a local target needs --state or the platform")
        return state_dir_for(self.platform.name)

    def plan(self, progress: Progress) -> dict:
        return empty("local", NOTHING_TO_PLAN)

    def preview(self, progress: Progress, *, destroy: bool = False) -> Preview:
        return Preview(needs_confirmation=False)

    def apply(self, preview: Preview, progress: Progress) -> Outcome:
        warnings = []
        if self.out != "build":
            warnings.append("note: --out is ignored for target local (the build lives in the state dir)")
        result = self.up()
        return Outcome("", warnings + [f"warning: {warning}" for warning in result.warnings], up=result)

    def destroy(self, preview: Preview, progress: Progress) -> Outcome:
        return Outcome(describe_down(self.state_dir, self.down()))

    def up(self, *, hub_port: int | None = None, gateway_port: int | None = None, timeout: float = 180.0) -> UpResult:
        return supervisor.up(self.config_path, self.state, hub_port=hub_port, gateway_port=gateway_port,
                             timeout=timeout)

    def down(self) -> DownResult:
        return supervisor.down(self.state_dir)

    def status(self) -> list[ComponentStatus]:
        return supervisor.status(self.state_dir)

    def log_path(self, which: str) -> Path | None:
        return supervisor.log_path(self.state_dir, which)

    def logs(self, which: str, *, lines: int, follow: bool) -> Iterator[str]:
        """The log's last `lines` lines, then (with `follow`) whatever is appended."""
        path = self.log_path(which)
        if path is None or not path.exists():
            raise UserError(f"no log for {which!r} (hub, gateway, proxy, or the name of a Dask cluster)")
        with open(path, "rb") as handle:
            tail = handle.read().decode(errors="replace").splitlines()[-lines:]
            yield "".join(line + "\n" for line in tail)
            while follow:
                chunk = handle.read()
                if chunk:
                    yield chunk.decode(errors="replace")
                else:
                    time.sleep(0.5)

    def token(self, username: str) -> str:
        return supervisor.user_token(self.state_dir, username)


def describe_down(directory: Path, result: DownResult) -> str:
    """What `down` did, in a line; fails when something would not stop."""
    if result.survivors:
        raise RuntimeFailure(f"could not stop pids {result.survivors}")
    return f"stopped {len(result.stopped)} process(es) of {directory}" if result.stopped else "nothing was running"

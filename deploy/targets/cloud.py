"""Target aws / gcp: Terraform from the rendered stack (see `deploy.cloud_ops`).

The hub VM that will run the platform's hub and gateway there is not built yet, so the
runtime commands (`up`, `down`, `status`, `logs`, `token`) say so.
"""

from __future__ import annotations

from pathlib import Path

from deploy import cloud_ops
from deploy.errors import UserError
from deploy.local.results import ComponentStatus, DownResult, UpResult
from deploy.targets.base import Outcome, Preview, Progress
from render.schema import Platform


class CloudTarget:
    def __init__(self, platform: Platform, *, out: str = "build", state: str | None = None) -> None:
        self.platform, self.out, self.state = platform, out, state
        self.name = platform.target

    def plan(self, progress: Progress) -> dict:
        prepared = cloud_ops.prepare(self.platform, self.out, self.state, progress)
        _, summary = cloud_ops.plan(prepared, progress=progress)
        return summary

    def preview(self, progress: Progress, *, destroy: bool = False) -> Preview:
        prepared = cloud_ops.prepare(self.platform, self.out, self.state, progress)
        progress("terraform plan" + (" -destroy" if destroy else ""))
        plan, text = prepared.stack.quick_plan(destroy=destroy)
        return Preview(text=text, changes=plan.changes, handle=(prepared, plan))

    def apply(self, preview: Preview, progress: Progress) -> Outcome:
        prepared, plan = preview.handle
        if preview.changes:
            progress("terraform apply (the plan above, exactly)")
            prepared.stack.apply(plan)
        prepared.stack.forget_plans()
        outputs = cloud_ops.write_outputs(prepared)
        published = cloud_ops.publish_hub(prepared, outputs, progress)
        hub = f"; hub configuration {published.version[:12]} published" if published else ""
        return Outcome(
            f"applied: {self.platform.name} on {self.name}; {len(outputs)} output(s) in {self.out}/{cloud_ops.OUTPUTS}"
            + hub
        )

    def destroy(self, preview: Preview, progress: Progress) -> Outcome:
        prepared, plan = preview.handle
        if preview.changes:
            progress("terraform apply (the destroy plan above)")
            prepared.stack.apply(plan)
        prepared.stack.forget_plans()
        (prepared.build / cloud_ops.OUTPUTS).unlink(missing_ok=True)
        return Outcome(f"destroyed: every resource of {self.platform.name}; the state bucket is kept")

    def _runtime_not_here(self, command: str):
        return UserError(f"`platform {command}` runs the local target; target {self.name} has no hub runtime here yet")

    def up(self, *, hub_port: int | None = None, gateway_port: int | None = None, timeout: float = 180.0) -> UpResult:
        raise self._runtime_not_here("up")

    def down(self) -> DownResult:
        raise self._runtime_not_here("down")

    def status(self) -> list[ComponentStatus]:
        raise self._runtime_not_here("status")

    def log_path(self, which: str) -> Path | None:
        raise self._runtime_not_here("logs")

    def token(self, username: str) -> str:
        raise self._runtime_not_here("token")

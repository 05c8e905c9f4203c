"""Target aws / gcp: Terraform from the rendered stack (see `deploy.cloud_ops`).

On aws, `status`, `logs` and `token` ask the cloud's APIs and the hub's
(`deploy.targets.cloud_runtime`); on gcp `status` and `token` (`deploy.targets.gcp_runtime`). `up` and `down` belong to
the local target: they say to use `apply` and `destroy` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from deploy import cloud_ops
from deploy.errors import UserError
from deploy.local.results import ComponentStatus, DownResult, UpResult
from deploy.targets import cloud_teardown
from deploy.targets.base import Outcome, Preview, Progress
from deploy.targets.cloud_runtime import AwsRuntime
from render.schema import Platform


class CloudTarget:
    def __init__(self, platform: Platform, *, out: str = "build", state: str | None = None,
                 config_path: Path | None = None) -> None:
        self.platform, self.out, self.state = platform, out, state
        self.config_path = config_path  # its environments.lock: the machines' environments
        self.name = platform.target

    @property
    def state_dir(self) -> Path:
        return cloud_ops.state_dir_of(self.platform, self.state)

    def plan(self, progress: Progress) -> dict:
        prepared = cloud_ops.prepare(self.platform, self.out, self.state, progress)
        _, summary = cloud_ops.plan(prepared, progress=progress)
        return summary

    def preview(self, progress: Progress, *, destroy: bool = False) -> Preview:
        prepared = cloud_ops.prepare(self.platform, self.out, self.state, progress, self.config_path)
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
        # What the hub made at run time goes first (gcp: homes too; aws: its homes after Terraform).
        ended = cloud_teardown.end_machines(self.platform, progress, homes=self.name != "aws")
        if preview.changes:
            progress("terraform apply (the destroy plan above)")
            prepared.stack.apply(plan)
        prepared.stack.forget_plans()
        (prepared.build / cloud_ops.OUTPUTS).unlink(missing_ok=True)
        if self.name == "aws" and self.platform.cloud.aws:
            ended.homes = cloud_teardown.delete_aws_homes(self.platform)
        done = ended.describe()
        return Outcome(f"destroyed: every resource of {self.platform.name}{f'; {done}' if done else ''}; "
                       "the state bucket is kept")

    def end_machines(self, progress: Progress) -> Outcome:
        """`destroy --machines-only`: what the hub made at run time, without Terraform."""
        ended = cloud_teardown.end_machines(self.platform, progress)
        return Outcome(f"{self.platform.name}: {ended.describe() or 'no notebook server, machine secret or home'}; "
                       "Terraform's resources are kept")

    def up(self, *, hub_port: int | None = None, gateway_port: int | None = None, timeout: float = 180.0) -> UpResult:
        raise UserError(f"`platform up` runs a platform on this machine; {self.platform.name} targets {self.name}: "
                        f"`platform apply` creates or updates it there (`platform status` then shows it)")

    def down(self) -> DownResult:
        raise UserError(f"`platform down` stops a platform on this machine; {self.platform.name} targets "
                        f"{self.name}: `platform destroy` removes it there")

    def _runtime(self) -> AwsRuntime:
        if self.name == "gcp":
            from deploy.targets.gcp_runtime import GcpRuntime

            return GcpRuntime(self.platform, Path(self.out).absolute())
        if self.name != "aws":
            raise UserError(f"target {self.name} has no hub runtime yet: `platform status`, `logs` and `token` "
                            f"work for aws, gcp and local")
        return AwsRuntime(self.platform, Path(self.out).absolute())

    def status(self) -> list[ComponentStatus]:
        return self._runtime().status()

    def log_path(self, which: str) -> Path | None:
        return None  # the logs are in the cloud: see `logs`

    def logs(self, which: str, *, lines: int, follow: bool) -> Iterator[str]:
        return self._runtime().logs(which, lines=lines, follow=follow)

    def token(self, username: str) -> str:
        return self._runtime().token(username)

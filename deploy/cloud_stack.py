"""A rendered Terraform stack run for real: working directory, backend, plan, apply.

The rendered stack (`build/terraform/<target>/` or the bootstrap stack) is copied into a
working directory under the state dir, so build/ stays exactly what render produced and
Terraform's own files (.terraform, plan files, logs, local state) live beside the state.

Two settings come from outside the rendered output, for tests and special setups (never
from platform.yaml):
- GRATICULE_TF_OVERRIDES: a directory whose `*_override.tf.json` / `*_override.tf`
  files are copied into the working directory (e.g. provider endpoints of a moto server);
- GRATICULE_TF_BACKEND_CONFIG: a file passed to `terraform init -backend-config=FILE`
  (e.g. the S3 endpoint of a moto server); bootstrap stacks (local state) ignore it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from deploy.files import write_atomic
from deploy.runtime import env
from deploy.terraform import PlanResult, Terraform

OVERRIDES_ENV = env.TF_OVERRIDES
BACKEND_CONFIG_ENV = env.TF_BACKEND_CONFIG
PROVIDERS = {"aws": ("hashicorp/aws",), "gcp": ("hashicorp/google",)}
_KEEP = ("terraform.tfstate", "terraform.tfstate.backup", ".terraform.lock.hcl")


class CloudStack:
    """One stack's working directory `<root>/stack` and runner state under `<root>`."""

    def __init__(self, root: Path, target: str, files: Mapping[str, bytes], *, remote_backend: bool = True):
        self.root = Path(root).absolute()
        self.workdir = self.root / "stack"
        self.target = target
        self.remote_backend = remote_backend
        self._write(files)
        self.tf = Terraform(self.workdir, state_dir=self.root, providers=PROVIDERS.get(target, ()))

    def _write(self, files: Mapping[str, bytes]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        wanted = dict(files)
        overrides = os.environ.get(OVERRIDES_ENV)
        if overrides:
            for path in sorted(Path(overrides).glob("*_override.tf*")):
                wanted[path.name] = path.read_bytes()
        for existing in self.workdir.iterdir():
            if existing.is_file() and existing.name not in wanted and existing.name not in _KEEP:
                existing.unlink()  # a file render no longer produces must not linger
        for name, data in wanted.items():
            write_atomic(self.workdir / name, data, 0o600)

    def init(self) -> None:
        args = ["-input=false", "-no-color", "-reconfigure"]
        backend_config = os.environ.get(BACKEND_CONFIG_ENV)
        if backend_config and self.remote_backend:
            args.append(f"-backend-config={Path(backend_config).absolute()}")
        self.tf.run("init", *args, stream=True)

    def plan(self, *, destroy: bool = False) -> tuple[PlanResult, dict]:
        """A saved plan and Terraform's JSON view of it (for the summary of every change)."""
        result = self.tf.plan(destroy=destroy)
        return result, self.tf.show_plan(result)

    def quick_plan(self, *, destroy: bool = False) -> tuple[PlanResult, str]:
        """A saved plan and Terraform's own text of it: no `show -json`, which costs as
        much as the plan itself with a big provider schema."""
        path = self.root / "plan.tfplan"
        args = ["-input=false", "-no-color", "-detailed-exitcode", f"-out={path}"]
        proc = self.tf.run("plan", *args, *(["-destroy"] if destroy else []), ok_codes=(0, 2), stream=True)
        return PlanResult(changes=proc.returncode == 2, plan_file=path), _plan_text(proc.stdout)

    def apply(self, plan: PlanResult) -> None:
        self.tf.apply(plan)

    def outputs(self) -> dict[str, object]:
        """Every non-sensitive output (build/ holds no secrets)."""
        raw = json.loads(self.tf.run("output", "-json", "-no-color").stdout or "{}")
        return {name: entry.get("value") for name, entry in sorted(raw.items()) if not entry.get("sensitive")}

    def latest_log(self) -> Path | None:
        logs = sorted(self.tf.logs.glob("*.log"))
        return logs[-1] if logs else None

    def forget_plans(self) -> None:
        for plan in self.root.glob("*.tfplan"):
            plan.unlink(missing_ok=True)

    def clean(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _plan_text(stdout: str) -> str:
    """Terraform's plan output from the first change on (its refresh chatter dropped)."""
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(("Terraform will perform", "No changes.")):
            return "\n".join(lines[index:]).strip()
    return stdout.strip()

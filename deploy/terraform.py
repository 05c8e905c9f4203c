"""Run the real Terraform CLI on a rendered stack, offline, from a provider mirror.

Providers come from a local filesystem mirror (found by `find_provider_mirror`), named in
a CLI config file that the runner writes and passes as `TF_CLI_CONFIG_FILE`, so neither
the machine's own CLI config nor the internet is needed. Every command runs with
`-input=false -no-color`; its full output is kept under `<state>/logs/`, and a failure
raises `TerraformError` with the few lines that say what went wrong.

    tf = Terraform(build / "terraform" / "aws", state_dir=state / "terraform")
    tf.init(); tf.validate(); plan = tf.plan(); tf.apply(plan.plan_file); tf.output()
"""

from __future__ import annotations

import json
import os
import platform as host
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy import console
from deploy.errors import RuntimeFailure
from deploy.files import write_atomic
from deploy.runtime import env as contract

PLUGIN_DIR_ENV = contract.TF_PLUGIN_DIR
REGISTRY = "registry.terraform.io"
# Where provider mirrors usually live; GRATICULE_TF_PLUGIN_DIR comes first.
MIRROR_ROOTS = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)
SUMMARY_LINES = 8


class TerraformError(RuntimeFailure):
    """A Terraform command failed; `str()` is a short summary, `log` the full output."""

    def __init__(self, command: str, summary: str, log: Path | None) -> None:
        self.command, self.summary, self.log = command, summary, log
        where = f" (full log: {log})" if log else ""
        super().__init__(f"terraform {command} failed{where}:\n{summary}")


@dataclass(frozen=True)
class PlanResult:
    changes: bool
    plan_file: Path


def platform_dir() -> str:
    """Terraform's `<os>_<arch>` for this machine, e.g. linux_amd64."""
    machine = host.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{host.system().lower()}_{arch}"


def mirror_has(root: Path, provider: str) -> bool:
    """Whether `root` is a filesystem mirror holding `namespace/type` for this platform,
    unpacked (<host>/<ns>/<type>/<version>/<os_arch>/) or packed (..._<os_arch>.zip)."""
    base = root / REGISTRY / provider
    if not base.is_dir():
        return False
    target = platform_dir()
    unpacked = any((version / target).is_dir() for version in base.iterdir())
    packed = any(base.glob(f"terraform-provider-*_{target}.zip"))
    return unpacked or packed


def find_provider_mirror(
    providers: Sequence[str] = ("hashicorp/aws",),
    roots: Iterable[str | Path] | None = None,
    env: Mapping[str, str] | None = None,
) -> Path | None:
    """The first mirror directory that holds every provider in `providers`, or None.

    `GRATICULE_TF_PLUGIN_DIR` is searched first (and, when set, it is the only
    candidate besides `roots` given explicitly)."""
    env = os.environ if env is None else env
    candidates: list[str | Path] = []
    if env.get(PLUGIN_DIR_ENV):
        candidates.append(env[PLUGIN_DIR_ENV])
    candidates += list(MIRROR_ROOTS if roots is None else roots)
    for candidate in candidates:
        root = Path(candidate).expanduser()
        if root.is_dir() and all(mirror_has(root, provider) for provider in providers):
            return root.resolve()
    return None


def cli_config(mirror: Path | None) -> str:
    """A Terraform CLI config that installs providers from `mirror` only (None: default)."""
    if mirror is None:
        return ""
    path = json.dumps(str(mirror))
    return (
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path    = {path}\n    include = [\"{REGISTRY}/*/*\"]\n  }}\n"
        "}\n"
        "disable_checkpoint = true\n"
    )


def summarize(output: str, limit: int = SUMMARY_LINES) -> str:
    """The `Error:` blocks of Terraform's output, box drawing removed, a few lines each."""
    lines = [re.sub(r"^[│╷╵]\s?", "", line).rstrip() for line in output.splitlines()]
    picked: list[str] = []
    for index, line in enumerate(lines):
        if line.startswith("Error: "):
            block = [line]
            for follow in lines[index + 1 :]:
                if follow.startswith(("Error: ", "Warning: ")) or len(block) >= 4:
                    break
                if follow.strip():
                    block.append("  " + follow.strip())
            picked += block
    if not picked:
        picked = [line for line in lines if line.strip()][-limit:]
    return "\n".join(picked[:limit]) or "(no output)"


class Terraform:
    """Terraform commands in `workdir` (the rendered stack); state of the runner (CLI
    config, logs, plan files) under `state_dir`, `.terraform` under `state_dir/data`."""

    def __init__(
        self,
        workdir: Path,
        *,
        state_dir: Path | None = None,
        mirror: Path | None = None,
        providers: Sequence[str] = ("hashicorp/aws",),
        env: Mapping[str, str] | None = None,
        binary: str = "terraform",
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.state_dir = Path(state_dir or self.workdir / ".graticule-terraform").resolve()
        self.mirror = mirror if mirror is not None else find_provider_mirror(providers)
        self.binary = shutil.which(binary) or binary
        self.logs = self.state_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.config_file = self.state_dir / "terraform.rc"
        write_atomic(self.config_file, cli_config(self.mirror).encode(), 0o600)
        self.env = {
            **os.environ,
            **(env or {}),
            "TF_CLI_CONFIG_FILE": str(self.config_file),
            "TF_DATA_DIR": str(self.state_dir / "data"),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }
        self._count = len(list(self.logs.glob("*.log")))  # keep earlier runs' logs
        self.last_log: Path | None = None

    def run(self, command: str, *args: str, ok_codes: Sequence[int] = (0,), timeout: float | None = None,
            stream: bool = False) -> subprocess.CompletedProcess[str]:
        """`terraform <command> <args>`; raises TerraformError unless the exit code is in ok_codes.

        stream: show Terraform's output line by line while it runs, under a step with elapsed
        time (init, plan, apply, destroy take minutes); machine-read commands stay quiet."""
        argv = [self.binary, f"-chdir={self.workdir}", command, *args]
        started = time.monotonic()
        try:
            if stream:
                with console.step(f"terraform {command}") as shown:
                    finished = console.run_streamed(argv, env=self.env, timeout=timeout)
                    if finished.returncode not in ok_codes:
                        shown.fail()
                if finished.returncode is None:
                    raise subprocess.TimeoutExpired(argv, timeout or 0, output=finished.stdout)
                proc = subprocess.CompletedProcess(argv, finished.returncode, finished.stdout, finished.stderr)
            else:
                proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout,
                                      check=False)
        except FileNotFoundError:
            raise TerraformError(command, f"{self.binary!r} not found: install Terraform >= 1.10", None) from None
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            log = self._log(command, argv, out, "", None, time.monotonic() - started)
            raise TerraformError(command, f"timed out after {timeout} s", log) from None
        log = self._log(command, argv, proc.stdout, proc.stderr, proc.returncode, time.monotonic() - started)
        if proc.returncode not in ok_codes:
            raise TerraformError(command, summarize(proc.stderr + "\n" + proc.stdout), log)
        return proc

    def _log(self, command: str, argv: list[str], stdout: str, stderr: str, code: int | None,
             seconds: float) -> Path:
        self._count += 1
        path = self.last_log = self.logs / f"{self._count:03d}-{command}.log"
        header = f"$ {' '.join(argv)}\n# exit {code} after {seconds:.1f} s\n"
        path.write_text(f"{header}\n## stdout\n{stdout}\n## stderr\n{stderr}")
        return path

    def init(self, *, backend: bool = True, timeout: float | None = None) -> None:
        args = ["-input=false", "-no-color"]
        if not backend:
            args.append("-backend=false")
        self.run("init", *args, timeout=timeout, stream=True)

    def validate(self) -> dict:
        """`terraform validate -json`: the diagnostics document; raises when not valid."""
        proc = self.run("validate", "-json", "-no-color", ok_codes=(0, 1))
        result = json.loads(proc.stdout)
        if not result.get("valid"):
            lines = [
                f"{d.get('severity')}: {d.get('summary')}: {d.get('detail', '')}".strip()
                + (f" ({d['address']})" if d.get("address") else "")
                for d in result.get("diagnostics", []) if d.get("severity") == "error"
            ]
            raise TerraformError("validate", "\n".join(lines[:SUMMARY_LINES]), self.last_log)
        return result

    def plan(self, *args: str, plan_file: str = "plan.tfplan", destroy: bool = False,
             timeout: float | None = None) -> PlanResult:
        """A saved plan; `changes` is False when the infrastructure already matches."""
        path = self.state_dir / plan_file
        extra = ["-destroy"] if destroy else []
        proc = self.run("plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={path}", *extra, *args,
                        ok_codes=(0, 2), timeout=timeout, stream=True)
        return PlanResult(changes=proc.returncode == 2, plan_file=path)

    def show_plan(self, plan: PlanResult) -> dict:
        """The saved plan as Terraform's JSON document (resource_changes, output_changes...)."""
        return json.loads(self.run("show", "-json", "-no-color", str(plan.plan_file)).stdout)

    def apply(self, plan: PlanResult | None = None, *args: str, timeout: float | None = None) -> None:
        target = [str(plan.plan_file)] if plan else ["-auto-approve", *args]
        self.run("apply", "-input=false", "-no-color", *target, timeout=timeout, stream=True)

    def destroy(self, *args: str, timeout: float | None = None) -> None:
        self.run("destroy", "-input=false", "-no-color", "-auto-approve", *args, timeout=timeout, stream=True)

    def output(self) -> dict[str, object]:
        """Every output's value."""
        raw = json.loads(self.run("output", "-json", "-no-color").stdout or "{}")
        return {name: entry.get("value") for name, entry in raw.items()}

    def state_resources(self) -> list[str]:
        proc = self.run("state", "list", ok_codes=(0, 1))
        return [line for line in proc.stdout.splitlines() if line.strip()]

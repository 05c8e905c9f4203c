"""Play a GitHub Actions job here: its `run:` steps, in order, read from the workflow file.

`uses:` steps are not run; the caller stands in for their effect (`stand_ins`: checkout is
a fresh clone made by the caller, setup-python/setup-terraform are what this machine
has, the cloud-credential actions are moto's fake credentials in the environment, and
github-script's comment is read from the file it would post). `${{ ... }}` expressions
are looked up in `context` (dotted names: `steps.ID.outputs.NAME` from earlier steps,
anything else given by the caller); an unknown expression or condition fails the test
rather than guessing. Each step runs as GitHub runs it: `bash -e -o pipefail`, with
GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP and the step's `env:`.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class JobRun:
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)  # names of the steps run, in order
    stood_in: list[str] = field(default_factory=list)  # `uses:` of the steps not run
    summary: str = ""
    logs: dict[str, str] = field(default_factory=dict)


class StepFailed(AssertionError):
    pass


def load_job(workflow: Path, job: str) -> dict:
    return YAML(typ="safe", pure=True).load(workflow.read_text())["jobs"][job]


def run_job(
    workflow: Path,
    job: str,
    *,
    workdir: Path,
    runner_temp: Path,
    context: Mapping[str, str],
    env: Mapping[str, str],
    stand_ins: Mapping[str, Callable[[dict], None]] | None = None,
    timeout: float = 1200,
) -> JobRun:
    result = JobRun()
    runner_temp.mkdir(parents=True, exist_ok=True)
    summary = runner_temp / "_step_summary.md"
    summary.touch()
    for index, step in enumerate(load_job(workflow, job)["steps"]):
        name = step.get("name") or step.get("uses") or f"step {index}"
        lookup = _lookup(context, result, runner_temp)
        if "uses" in step:
            action = step["uses"].split("@")[0]
            result.stood_in.append(action)
            if stand_ins and action in stand_ins:
                stand_ins[action]({key: _substitute(str(v), lookup) for key, v in step.get("with", {}).items()})
            continue
        condition = step.get("if")
        if condition not in (None, "always()"):
            raise AssertionError(f"{workflow.name}: step {name!r}: the test cannot evaluate `if: {condition}`")
        output = runner_temp / f"_output_{index}"
        output.write_text("")
        step_env = {
            **os.environ,
            **env,
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workdir),
            "RUNNER_TEMP": str(runner_temp),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            **{key: _substitute(str(value), lookup) for key, value in step.get("env", {}).items()},
        }
        script = _substitute(step["run"], lookup)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
            cwd=workdir, env=step_env, capture_output=True, text=True, timeout=timeout, check=False,
        )
        result.logs[name] = proc.stdout + proc.stderr
        result.ran.append(name)
        if proc.returncode != 0:
            raise StepFailed(f"{workflow.name}: step {name!r} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        if step.get("id"):
            result.outputs[step["id"]] = _parse_outputs(output.read_text())
    result.summary = summary.read_text()
    return result


def _lookup(context: Mapping[str, str], result: JobRun, runner_temp: Path) -> Callable[[str], str]:
    def lookup(expression: str) -> str:
        match = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression)
        if match:
            return result.outputs.get(match.group(1), {}).get(match.group(2), "")
        if expression == "runner.temp":
            return str(runner_temp)
        if expression in context:
            return context[expression]
        raise AssertionError(f"the test has no value for ${{{{ {expression} }}}}")

    return lookup


def _substitute(text: str, lookup: Callable[[str], str]) -> str:
    return EXPRESSION.sub(lambda match: lookup(match.group(1)), text)


def _parse_outputs(text: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            pairs[key] = value
    return pairs

"""Small steps of the GitOps workflows: `python -m deploy.gitops.ci COMMAND ...`.

- context PLATFORM_YAML: `key=value` lines for $GITHUB_OUTPUT (role ARNs, region,
  service accounts), read tolerantly so that an invalid file still gets its comment;
- snapshot SOURCE_DIR OUT_DIR: validate SOURCE_DIR/platform.yaml, render it into OUT_DIR
  with validation.json and a copy of the source; prints `valid=true|false`;
- check-workflows PLATFORM_YAML: exit 1 when .github/ differs from what graticule generates;
- write-workflows PLATFORM_YAML: (re)write them next to platform.yaml;
- outputs-summary OUTPUTS_JSON / plan-summary PLAN_JSON: Markdown for $GITHUB_STEP_SUMMARY.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from render.errors import ConfigErrors


def context(path: Path) -> dict[str, str]:
    from modules.ci import role_arn, service_account_email
    from render.loader import load

    data = load(path, str(path)).data if path.is_file() else {}
    data = data if isinstance(data, dict) else {}
    name = str(data.get("name") or "")
    target = str(data.get("target") or "local")
    cloud = (data.get("cloud") or {}).get(target) or {}
    result = {"name": name, "target": target}
    if target == "aws" and name and cloud.get("account_id"):
        partition = "aws-us-gov" if "-gov-" in str(cloud.get("region", "")) else "aws"
        result["region"] = str(cloud.get("region", ""))
        for role in ("plan", "apply"):
            result[f"{role}_role"] = role_arn(str(cloud["account_id"]), name, role, partition)
    elif target == "gcp" and name and cloud.get("project"):
        result["region"] = str(cloud.get("region", ""))
        for role in ("plan", "apply"):
            result[f"{role}_service_account"] = service_account_email(str(cloud["project"]), name, role)
    return result


def snapshot(source: Path, out: Path) -> bool:
    """Validate and render `source`/platform.yaml into `out`; False when it is invalid."""
    from render.build import RenderError, render
    from render.validate import load_platform_and_warnings

    config = source / "platform.yaml"
    out.mkdir(parents=True, exist_ok=True)
    if not config.is_file():
        return False  # no platform yet (e.g. the pull request that adds it): an empty base
    files: dict[str, bytes] = {}
    try:
        platform, warnings = load_platform_and_warnings(config, display="platform.yaml")
        _check_lock(config, platform)
        validation: dict = {"valid": True, "name": platform.name, "target": platform.target}
        if warnings:  # the plan still runs; `validate --strict` fails the check after the comment
            validation["warnings"] = [issue.as_dict() for issue in warnings]
        files = render(platform)
    except ConfigErrors as exc:
        validation = {"valid": False, "errors": [issue.as_dict() for issue in exc.issues]}
    except RenderError as exc:
        error = {"file": "platform.yaml", "line": 1, "col": 1, "path": "(render)", "message": str(exc)}
        validation = {"valid": False, "errors": [error]}
    for relative, data in files.items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (out / "validation.json").write_text(json.dumps(validation, indent=2, sort_keys=True) + "\n")
    shutil.copyfile(config, out / "platform.yaml")
    return bool(validation["valid"])


def _check_lock(config: Path, platform) -> None:
    """A stale environments.lock fails the pull request like an invalid platform.yaml."""
    from deploy.environments.lockcheck import lock_issues

    issues = lock_issues(config, "platform.yaml", platform)
    if issues:
        raise ConfigErrors(issues)


def stale_workflows(config: Path, root: Path) -> list[str]:
    """Workflow files under `root` that differ from what `platform.yaml` generates."""
    from deploy.gitops.workflows import workflow_files
    from render.validate import load_platform

    try:
        platform = load_platform(config, display=str(config))
    except ConfigErrors:
        return []  # reported by the validation step
    return [
        path
        for path, text in sorted(workflow_files(platform).items())
        if not (root / path).is_file() or (root / path).read_text() != text
    ]


def write_workflows(config: Path) -> None:
    from deploy.files import write_atomic
    from deploy.gitops.workflows import workflow_files
    from render.validate import load_platform

    root = config.absolute().parent
    for path, text in sorted(workflow_files(load_platform(config, display=str(config))).items()):
        write_atomic(root / path, text)
        print(f"wrote {path}")


def outputs_markdown(path: Path) -> str:
    if not path.is_file():
        return "### Platform outputs\n\nNo outputs: the apply did not finish (see the Apply step).\n"
    outputs = json.loads(path.read_text())
    lines = ["### Platform outputs", "", "| output | value |", "|---|---|"]
    for name, value in sorted(outputs.items()):
        shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        lines.append(f"| `{name}` | `{shown}` |")
    return "\n".join(lines) + "\n"


def plan_markdown(path: Path) -> str:
    from deploy.gitops.plan_summary import headline

    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return "### Drift check\n\nThe plan failed: see the step's log.\n"
    lines = ["### Drift check", "", headline(summary) if summary.get("has_changes") else "No drift.", ""]
    lines += [f"- `{change['address']}`: {', '.join(change['actions'])}" for change in summary.get("changes", [])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.gitops.ci")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("context").add_argument("config", type=Path)
    snap = commands.add_parser("snapshot")
    snap.add_argument("source", type=Path)
    snap.add_argument("out", type=Path)
    check = commands.add_parser("check-workflows")
    check.add_argument("config", type=Path)
    commands.add_parser("write-workflows").add_argument("config", type=Path)
    commands.add_parser("outputs-summary").add_argument("path", type=Path)
    commands.add_parser("plan-summary").add_argument("path", type=Path)
    args = parser.parse_args(argv)
    if args.command == "context":
        for key, value in context(args.config).items():
            print(f"{key}={value}")
    elif args.command == "snapshot":
        print(f"valid={'true' if snapshot(args.source, args.out) else 'false'}")
    elif args.command == "check-workflows":
        stale = stale_workflows(args.config, args.config.absolute().parent)
        for path in stale:
            print(f"::error file={path}::{path} is not what graticule generates for platform.yaml")
        if stale:
            print("regenerate them: python -m deploy.gitops.ci write-workflows platform.yaml", file=sys.stderr)
            return 1
    elif args.command == "write-workflows":
        write_workflows(args.config)
    elif args.command == "outputs-summary":
        sys.stdout.write(outputs_markdown(args.path))
    elif args.command == "plan-summary":
        sys.stdout.write(plan_markdown(args.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())

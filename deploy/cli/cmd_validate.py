"""`platform validate [PATH] [--json] [--strict]`: check platform.yaml, report every error
located. Warnings (e.g. spot asked of a type without a spot market) are printed and exit 0;
`--strict`, which CI runs, makes them fail (exit 2) too."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.cli.common import add_config_argument, print_json
from render.errors import ConfigErrors, ConfigIssue
from render.schema import Platform
from render.validate import load_platform_and_warnings


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("validate", help="check platform.yaml and report every error")
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    parser.add_argument("--strict", action="store_true", help="warnings fail too (exit 2), as in CI")
    parser.add_argument("--explain", action="store_true", help="also show the next three run times of each job")
    parser.set_defaults(func=run)


def summary(platform: Platform) -> dict[str, int]:
    return {
        "users": len(platform.users),
        "groups": len(platform.groups),
        "budgets": len(platform.budgets),
        "profiles": len(platform.profiles),
        "environments": len(platform.environments),
    }


def run(args: argparse.Namespace) -> int:
    try:
        platform, warnings = load_platform_and_warnings(Path(args.path), display=args.path)
        _check_lock(args, platform)
    except ConfigErrors as exc:
        if not args.json:
            raise ConfigErrors([*exc.issues, *exc.warnings]) from None  # printed in file order
        print_json({"valid": False, **_by_severity([*exc.issues, *exc.warnings])})
        return 2
    failed = bool(args.strict and warnings)
    if args.json:
        result = {"valid": not failed, "name": platform.name, "target": platform.target, **summary(platform)}
        print_json({**result, **_by_severity(warnings)})
        return 2 if failed else 0
    for warning in warnings:
        print(warning, file=sys.stderr)
    if failed:
        print(f"{len(warnings)} warning(s), and --strict makes warnings fail", file=sys.stderr)
        return 2
    details = ", ".join(f"{count} {what}" for what, count in summary(platform).items())
    print(f"OK: {platform.name} ({details})", file=sys.stdout)
    if args.explain and platform.jobs:
        import time

        from deploy.cli.cmd_jobs import schedule_lines

        print("\n".join(["jobs:", *(f"  {line}" for line in schedule_lines(platform.jobs, time.time()))]))
    return 0


def _by_severity(issues: list[ConfigIssue]) -> dict[str, list[dict]]:
    """{"errors": [...], "warnings": [...]}, each issue carrying its `severity`."""
    return {
        "errors": [issue.as_dict() for issue in issues if issue.severity == "error"],
        "warnings": [issue.as_dict() for issue in issues if issue.severity == "warning"],
    }


def _check_lock(args: argparse.Namespace, platform: Platform) -> None:
    """A stale or incomplete environments.lock is an error located at the environment."""
    from deploy.environments.lockcheck import lock_issues

    issues = lock_issues(Path(args.path), args.path, platform)
    if issues:
        raise ConfigErrors(issues)

"""`platform validate [PATH] [--json]`: check platform.yaml, report every error located."""

from __future__ import annotations

import argparse
import sys

from deploy.cli.common import add_config_argument, load, print_json
from render.errors import ConfigErrors
from render.schema import Platform


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("validate", help="check platform.yaml and report every error")
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")
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
        platform = load(args)
        _check_lock(args, platform)
    except ConfigErrors as exc:
        if not args.json:
            raise
        print_json({"valid": False, "errors": [issue.as_dict() for issue in exc.issues]})
        return 2
    counts = summary(platform)
    if args.json:
        print_json({"valid": True, "name": platform.name, "target": platform.target, **counts})
    else:
        details = ", ".join(f"{count} {what}" for what, count in counts.items())
        print(f"OK: {platform.name} ({details})", file=sys.stdout)
    return 0


def _check_lock(args: argparse.Namespace, platform: Platform) -> None:
    """A stale or incomplete environments.lock is an error located at the environment."""
    from pathlib import Path

    from deploy.environments.lockcheck import lock_issues

    issues = lock_issues(Path(args.path), args.path, platform)
    if issues:
        raise ConfigErrors(issues)

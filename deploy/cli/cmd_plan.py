"""`platform plan [PATH] [--json] [--detailed-exitcode]`: what apply would change.

aws/gcp: render, terraform init with the backend from platform.yaml, a saved plan, and
its summary (adds, changes, every destroy). local: nothing to plan (`platform apply`
runs the platform on this machine).

Exit codes: 0 success (with --detailed-exitcode: no changes), 1 failure (Terraform's
error summarized, full log under the state dir), 2 invalid platform.yaml or arguments,
3 changes present (only with --detailed-exitcode).
"""

from __future__ import annotations

import argparse
import sys

from deploy.cli.common import add_config_argument, load, print_json

EXIT_CHANGES = 3


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("plan", help="show what `platform apply` would change (terraform plan)")
    add_config_argument(parser)
    add_stack_arguments(parser)
    parser.add_argument("--json", action="store_true", help="the plan summary as JSON on stdout")
    parser.add_argument(
        "--detailed-exitcode", action="store_true", help=f"exit {EXIT_CHANGES} when there are changes"
    )
    parser.set_defaults(func=run)


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="build", help="build directory (default: build/)")
    parser.add_argument("--state", metavar="DIR", help="state directory (default: .platform/<name>)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from deploy import cloud_ops
    from deploy.cli import terminal
    from deploy.targets import target_for

    platform = load(args)
    summary = target_for(platform, Path(args.path), out=args.out, state=args.state).plan(terminal.progress)
    if args.json:
        print_json(summary)
    else:
        print(cloud_ops.describe_plan(summary))
    if summary.get("drift"):
        print(f"note: {len(summary['drift'])} resource(s) changed outside Terraform", file=sys.stderr)
    return EXIT_CHANGES if args.detailed_exitcode and summary["has_changes"] else 0

"""`platform apply [PATH] [--auto-approve]`: make the platform what platform.yaml says.

aws/gcp: render, terraform init with the backend from platform.yaml, plan saved to a
file, confirmation (unless --auto-approve), apply of exactly that plan, outputs in
build/outputs.json. local: the same as `platform up`.

Exit codes: 0 applied (or nothing to do), 1 failure or declined (Terraform's error
summarized, full log under the state dir), 2 invalid platform.yaml or arguments (also:
confirmation needed but stdin is not a terminal), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from deploy.cli.cmd_plan import add_stack_arguments
from deploy.cli.common import CommandError, add_config_argument, load


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("apply", help="apply platform.yaml (terraform on aws/gcp, `up` on local)")
    add_config_argument(parser)
    add_stack_arguments(parser)
    parser.add_argument("--auto-approve", action="store_true", help="apply the plan without asking")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from deploy.cli import terminal
    from deploy.cli.local_target import instructions
    from deploy.targets import target_for

    platform = load(args)
    target = target_for(platform, Path(args.path), out=args.out, state=args.state)
    preview = target.preview(terminal.progress)
    if preview.text:
        print(preview.text)
    if preview.changes and preview.needs_confirmation and not args.auto_approve and not terminal.confirm(
        f"Apply these changes to {platform.name}? Type 'yes':", "yes"
    ):
        raise CommandError("not applied")
    outcome = target.apply(preview, terminal.progress)
    for warning in outcome.warnings:
        print(warning, file=sys.stderr)
    print(instructions(outcome.up, args.path) if outcome.up else outcome.message)
    return 0

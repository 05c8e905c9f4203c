"""`platform destroy [PATH] [--yes]`: remove every resource of the platform.

Asks for the platform's name to be typed unless --yes. aws/gcp: first what the hub made at
run time (notebook servers, machine secrets, home disks: deploy.targets.cloud_teardown),
then a destroy plan applied exactly; the state bucket (made by `platform bootstrap`) stays.
`--machines-only` does the first part alone, without Terraform. local: `platform down`.

Exit codes: 0 destroyed (or nothing there), 1 failure or declined, 2 invalid
platform.yaml or arguments (also: confirmation needed but stdin is not a terminal).
"""

from __future__ import annotations

import argparse

from deploy.cli.cmd_plan import add_stack_arguments
from deploy.cli.common import CommandError, add_config_argument, load


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("destroy", help="remove every resource of the platform")
    add_config_argument(parser)
    add_stack_arguments(parser)
    parser.add_argument("--yes", action="store_true", help="do not ask for the platform's name")
    parser.add_argument("--machines-only", action="store_true",
                        help="aws/gcp: end only what the hub made at run time (notebook servers, machine secrets, "
                             "home disks), without Terraform")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from deploy.cli import terminal
    from deploy.errors import UserError
    from deploy.targets import target_for

    platform = load(args)
    if not args.yes and not terminal.confirm(
        f"This destroys every resource of {platform.name} ({platform.target}). Type its name to go on:",
        platform.name,
    ):
        raise CommandError("not destroyed: the name did not match")
    target = target_for(platform, Path(args.path), out=args.out, state=args.state)
    if args.machines_only:
        if not hasattr(target, "end_machines"):
            raise UserError(f"--machines-only is for the aws and gcp targets; {platform.name} targets "
                            f"{platform.target}")
        print(target.end_machines(terminal.progress).message)
        return 0
    preview = target.preview(terminal.progress, destroy=True)
    if preview.text:
        print(preview.text)
    print(target.destroy(preview, terminal.progress).message)
    return 0

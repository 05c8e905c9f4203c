"""`platform destroy [PATH] [--yes]`: remove every resource of the platform.

Asks for the platform's name to be typed unless --yes. aws/gcp: a destroy plan applied
exactly; the state bucket (made by `platform bootstrap`) stays. local: `platform down`.

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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploy import cloud_ops
    from deploy.cli import terminal

    platform = load(args)
    if not args.yes and not terminal.confirm(
        f"This destroys every resource of {platform.name} ({platform.target}). Type its name to go on:",
        platform.name,
    ):
        raise CommandError("not destroyed: the name did not match")
    if platform.target == "local":
        from deploy.cli import cmd_down

        return cmd_down.run(argparse.Namespace(path=args.path, state=args.state))
    prepared = cloud_ops.prepare(platform, args.out, args.state, terminal.progress)
    terminal.progress("terraform plan -destroy")
    plan, text = prepared.stack.quick_plan(destroy=True)
    print(text)
    if plan.changes:
        terminal.progress("terraform apply (the destroy plan above)")
        prepared.stack.apply(plan)
    prepared.stack.forget_plans()
    (prepared.build / cloud_ops.OUTPUTS).unlink(missing_ok=True)
    print(f"destroyed: every resource of {platform.name}; the state bucket is kept")
    return 0

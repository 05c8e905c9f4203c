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
    from deploy import cloud_ops
    from deploy.cli import terminal

    platform = load(args)
    if platform.target == "local":
        return _local(args)
    prepared = cloud_ops.prepare(platform, args.out, args.state, terminal.progress)
    terminal.progress("terraform plan")
    plan, text = prepared.stack.quick_plan()
    print(text)
    if plan.changes:
        if not args.auto_approve and not terminal.confirm(
            f"Apply these changes to {platform.name}? Type 'yes':", "yes"
        ):
            raise CommandError("not applied")
        terminal.progress("terraform apply (the plan above, exactly)")
        prepared.stack.apply(plan)
    prepared.stack.forget_plans()
    outputs = cloud_ops.write_outputs(prepared)
    print(f"applied: {platform.name} on {platform.target}; {len(outputs)} output(s) in {args.out}/outputs.json")
    return 0


def _local(args: argparse.Namespace) -> int:
    """Target local: the hub engineer's `up`, with the same arguments `platform up` takes."""
    from deploy.cli import cmd_up

    if args.out != "build":
        print("note: --out is ignored for target local (the build lives in the state dir)", file=sys.stderr)
    namespace = argparse.Namespace(
        path=args.path, state=args.state, port=None, gateway_port=None, timeout=180.0, json=False
    )
    return cmd_up.run(namespace)

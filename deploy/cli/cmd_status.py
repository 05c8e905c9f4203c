"""`platform status [--state DIR] [--json]`: each component up or down; exit 1 if any is down.

On aws: the hub instance (EC2), then the hub and the gateway through the hub's URL."""

from __future__ import annotations

import argparse

from deploy.cli.common import add_config_argument, print_json
from deploy.cli.local_target import add_out_argument, add_state_argument, runtime_target
from deploy.cli.terminal import print_table


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("status", help="is the platform running? (exit 1 if not all up)")
    add_config_argument(parser)
    add_state_argument(parser)
    add_out_argument(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = runtime_target(args)
    directory = target.state_dir
    report = target.status()
    all_up = all(component.up for component in report)
    if args.json:
        print_json({"state_dir": str(directory), "up": all_up, "components": [c.as_dict() for c in report]})
    else:
        rows = [[c.name, "up" if c.up else "down", str(c.pid or "-"), c.version or "-", c.address or "-"]
                for c in report]
        print_table(["COMPONENT", "STATE", "PID", "VERSION", "ADDRESS"], rows, ["bold"])
    return 0 if all_up else 1

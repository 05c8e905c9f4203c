"""`platform down [--state DIR]`: stop everything `platform up` started, by PID.

A cloud target's platform.yaml is refused, saying to use `platform destroy`."""

from __future__ import annotations

import argparse

from deploy.cli.common import add_config_argument
from deploy.cli.local_target import add_state_argument, runtime_target


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("down", help="stop the local platform: hub, gateway, servers, clusters")
    add_config_argument(parser)
    add_state_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploy.targets.local import describe_down

    target = runtime_target(args)
    print(describe_down(target.state_dir, target.down()))
    return 0

"""`platform down [--state DIR]`: stop everything `platform up` started, by PID."""

from __future__ import annotations

import argparse

from deploy.cli.common import CommandError, add_config_argument
from deploy.cli.local_target import add_state_argument, state_dir


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("down", help="stop the local platform: hub, gateway, servers, clusters")
    add_config_argument(parser)
    add_state_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploy.local import supervisor

    directory = state_dir(args)
    result = supervisor.down(directory)
    if result.survivors:
        raise CommandError(f"could not stop pids {result.survivors}")
    print(f"stopped {len(result.stopped)} process(es) of {directory}" if result.stopped else "nothing was running")
    return 0

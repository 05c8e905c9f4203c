"""`platform down [--state DIR]`: stop everything `platform up` started, by PID."""

from __future__ import annotations

import argparse

from deploy.cli.common import add_config_argument
from deploy.cli.local_target import add_state_argument, state_dir


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("down", help="stop the local platform: hub, gateway, servers, clusters")
    add_config_argument(parser)
    add_state_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from deploy.targets import LocalTarget

    target = LocalTarget(Path(args.path), state_dir(args))
    print(target.destroy(target.preview(lambda _: None, destroy=True), lambda _: None).message)
    return 0

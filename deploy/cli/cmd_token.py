"""`platform token NAME`: print a new hub API token for a platform.yaml user.

For the SDK (`graticule.login`) and for scripts and tests. Issued by the running hub
through its REST API with the platform's own service token (on aws: the admin token the
hub VM keeps in Secrets Manager, read with the operator's credentials).
"""

from __future__ import annotations

import argparse

from deploy.cli.common import UsageError, load
from deploy.cli.local_target import add_optional_config, add_out_argument, add_state_argument


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("token", help="print a new API token for a user of the hub")
    parser.add_argument("name", help="a user in platform.yaml")
    add_optional_config(parser)
    add_state_argument(parser)
    add_out_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from deploy.targets import target_for

    platform = load(args)
    if platform.user(args.name) is None:
        raise UsageError(f"no user {args.name!r} in {args.path}: only platform.yaml users get tokens")
    print(target_for(platform, Path(args.path), out=args.out, state=args.state).token(args.name))
    return 0

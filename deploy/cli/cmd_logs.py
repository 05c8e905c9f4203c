"""`platform logs [hub|gateway|proxy|CLUSTER_NAME] [--follow]`: a component's log.

Local: the files under the state directory. aws: the hub VM's CloudWatch stream
`hub/<component>` (what the VM's log shipper put there)."""

from __future__ import annotations

import argparse
import sys

from deploy.cli.local_target import add_optional_config, add_out_argument, add_state_argument, runtime_target


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("logs", help="show the hub's, the gateway's or a Dask cluster's log")
    parser.add_argument("which", nargs="?", default="hub", help="hub (default), gateway, proxy or a cluster name")
    parser.add_argument("--follow", "-F", action="store_true", help="keep printing what is appended")
    parser.add_argument("--lines", "-n", type=int, default=200, help="how many last lines to show first")
    add_optional_config(parser)
    add_state_argument(parser)
    add_out_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for text in runtime_target(args).logs(args.which, lines=args.lines, follow=args.follow):
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0

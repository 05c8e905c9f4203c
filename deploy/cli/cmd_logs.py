"""`platform logs [hub|gateway|proxy|CLUSTER_NAME] [--follow]`: the local platform's logs."""

from __future__ import annotations

import argparse
import sys
import time

from deploy.cli.common import UsageError
from deploy.cli.local_target import add_optional_config, add_state_argument, state_dir


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("logs", help="show the hub's, the gateway's or a Dask cluster's log")
    parser.add_argument("which", nargs="?", default="hub", help="hub (default), gateway, proxy or a cluster name")
    parser.add_argument("--follow", "-F", action="store_true", help="keep printing what is appended")
    parser.add_argument("--lines", "-n", type=int, default=200, help="how many last lines to show first")
    add_optional_config(parser)
    add_state_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from deploy.targets import LocalTarget

    path = LocalTarget(Path(args.path), state_dir(args)).log_path(args.which)
    if path is None or not path.exists():
        raise UsageError(f"no log for {args.which!r} (hub, gateway, proxy, or the name of a Dask cluster)")
    with open(path, "rb") as handle:
        lines = handle.read().decode(errors="replace").splitlines()[-args.lines :]
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
        while args.follow:
            chunk = handle.read()
            if chunk:
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
            else:
                time.sleep(0.5)
    return 0

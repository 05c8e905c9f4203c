"""`platform up [PATH] [--state DIR] [--port N]`: run the platform on this machine.

Renders platform.yaml for the local target into <state>/build, starts (or updates) the
real JupyterHub and dask-gateway, waits until they answer, and says how to log in.
Running it again applies a changed platform.yaml; running notebook servers and Dask
clusters are kept. A cloud target's platform.yaml is refused, saying to use `platform apply`.
"""

from __future__ import annotations

import argparse
import sys

from deploy.cli.common import add_config_argument, load, print_json
from deploy.cli.local_target import add_state_argument, instructions


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("up", help="run the platform on this machine (JupyterHub + dask-gateway)")
    add_config_argument(parser)
    add_state_argument(parser)
    parser.add_argument("--port", type=int, help="the hub's port on 127.0.0.1 (default 8000, or a free one)")
    parser.add_argument("--gateway-port", type=int, help="dask-gateway's port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for each component")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from deploy.targets import LocalTarget, target_for

    path = Path(args.path)
    # Without the file, the supervisor says so (and how to make one), as it always has.
    target = target_for(load(args), path, state=args.state) if path.exists() else LocalTarget(
        path, Path(args.state) if args.state else None)
    result = target.up(hub_port=args.port, gateway_port=args.gateway_port, timeout=args.timeout)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print_json(
            {
                "name": result.name,
                "state_dir": str(result.state_dir),
                "hub_url": result.hub_url,
                "gateway_url": result.gateway_url,
                "scheduler_address": result.scheduler_address,
                "started": result.started,
                "restarted": result.restarted,
                "unchanged": result.unchanged,
                "users": [user.name for user in result.users],
            }
        )
        return 0
    print(instructions(result, args.path))
    return 0

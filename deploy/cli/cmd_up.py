"""`platform up [PATH] [--state DIR] [--port N]`: run the platform on this machine.

Renders platform.yaml for the local target into <state>/build, starts (or updates) the
real JupyterHub and dask-gateway, waits until they answer, and says how to log in.
Running it again applies a changed platform.yaml; running notebook servers and Dask
clusters are kept.
"""

from __future__ import annotations

import argparse
import sys

from deploy.cli.common import DEFAULT_CONFIG, CommandError, add_config_argument, print_json
from deploy.cli.local_target import add_state_argument


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

    from deploy.local import supervisor

    try:
        result = supervisor.up(
            Path(args.path),
            Path(args.state) if args.state else None,
            hub_port=args.port,
            gateway_port=args.gateway_port,
            timeout=args.timeout,
        )
    except supervisor.SupervisorError as exc:
        raise CommandError(str(exc)) from None
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


def instructions(result, config: str = DEFAULT_CONFIG) -> str:
    changes = [
        f"{verb}: {', '.join(names)}"
        for verb, names in (("started", result.started), ("restarted", result.restarted),
                            ("unchanged", result.unchanged))
        if names
    ]
    lines = [
        f"{result.name} is up ({'; '.join(changes)})",
        "",
        f"  JupyterHub   {result.hub_url}",
        f"  dask-gateway {result.gateway_url or '(not configured)'}",
        f"  schedulers   {result.scheduler_address or '(not configured)'}",
        f"  state        {result.state_dir}",
        "",
        "Log in at the hub URL as one of the platform.yaml users:",
    ]
    for user in result.users:
        how = (
            "with the password already set"
            if user.password_set
            else "the password typed at the first login becomes the password (8+ characters)"
        )
        lines.append(f"  {user.name:<14}{' (admin)' if user.admin else '':<9}{how}")
    lines += [
        "",
        "Set or reset a password:  platform users passwd NAME" + _file_hint(config) + _state_hint(result),
        "API token (SDK, scripts): platform token NAME" + _file_hint(config) + _state_hint(result),
        f"From a laptop:            import graticule; graticule.login({result.hub_url!r})",
        "From a notebook:          import graticule; cluster = graticule.Cluster(n_workers=2)",
        "Stop everything:          platform down" + _state_hint(result),
    ]
    return "\n".join(lines)


def _file_hint(config: str) -> str:
    return "" if config == DEFAULT_CONFIG else f" --file {config}"


def _state_hint(result) -> str:
    from pathlib import Path

    default = (Path(".platform") / result.name).absolute()
    return "" if Path(result.state_dir) == default else f" --state {result.state_dir}"

"""What `platform up/down/status/logs/token` share: the target and its state directory, and
what `up` says."""

from __future__ import annotations

import argparse
from pathlib import Path

from deploy.cli.common import DEFAULT_CONFIG, UsageError, load
from deploy.runtime.state import default_state_dir


def add_state_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", metavar="DIR", help="state directory (default: .platform/<name>)")


def add_optional_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file", "-f", dest="path", default=DEFAULT_CONFIG, help="platform.yaml (default: ./platform.yaml)"
    )


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="build", metavar="DIR",
                        help="aws: the build directory `platform apply` wrote outputs.json to (default build)")


def runtime_target(args: argparse.Namespace):
    """The target whose hub these commands act on: platform.yaml's own (local, aws...) when
    the file is there; else the local platform of --state."""
    from deploy.targets import LocalTarget, target_for

    if not Path(args.path).exists():
        return LocalTarget(Path(args.path), state_dir(args))
    return target_for(load(args), Path(args.path), out=getattr(args, "out", "build"), state=args.state)


def state_dir(args: argparse.Namespace) -> Path:
    """--state if given, else .platform/<name> of the platform.yaml named by args.path."""
    if args.state:
        return Path(args.state).absolute()
    if not Path(args.path).exists():
        raise UsageError(f"{args.path} not found: give --state DIR or the platform.yaml to use")
    return default_state_dir(load(args).name)


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
    return "" if Path(result.state_dir) == default_state_dir(result.name) else f" --state {result.state_dir}"

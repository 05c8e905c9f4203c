"""What `platform up/down/status/logs/token` share: finding the state directory."""

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


def state_dir(args: argparse.Namespace) -> Path:
    """--state if given, else .platform/<name> of the platform.yaml named by args.path."""
    if args.state:
        return Path(args.state).absolute()
    if not Path(args.path).exists():
        raise UsageError(f"{args.path} not found: give --state DIR or the platform.yaml to use")
    return default_state_dir(load(args).name)

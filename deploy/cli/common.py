"""Small pieces every subcommand shares: errors, the platform.yaml argument, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deploy.errors import RuntimeFailure, UserError
from render.schema import Platform
from render.validate import load_platform

DEFAULT_CONFIG = "platform.yaml"


# The CLI's names for deploy.errors' two kinds (exit 1 and exit 2).
CommandError = RuntimeFailure
UsageError = UserError


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", default=DEFAULT_CONFIG, help="platform.yaml to use (default: ./platform.yaml)"
    )


def load(args: argparse.Namespace) -> Platform:
    """The validated platform named by `args.path`; raises ConfigErrors (exit 2)."""
    return load_platform(Path(args.path), display=args.path)


def print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")

"""Small pieces every subcommand shares: errors, the platform.yaml argument, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from render.schema import Platform
from render.validate import load_platform

DEFAULT_CONFIG = "platform.yaml"


class CommandError(Exception):
    """A runtime failure worth one plain line to the user (exit 1)."""


class UsageError(Exception):
    """Invalid input that has no file position, e.g. a bad argument value (exit 2)."""


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

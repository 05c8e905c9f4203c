"""`platform schema`: the JSON Schema of platform.yaml, for editors' YAML language servers."""

from __future__ import annotations

import argparse

from deploy.cli.common import print_json
from render.schema import json_schema


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("schema", help="print the JSON Schema of platform.yaml")
    parser.set_defaults(func=lambda args: print_json(json_schema()))

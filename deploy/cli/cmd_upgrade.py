"""`platform upgrade [PATH]`: rewrite an older apiVersion in place, keeping comments."""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

from ruamel.yaml import YAML

from deploy.cli.common import UsageError
from deploy.files import write_atomic
from render import loader, upgrade
from render.errors import ConfigErrors, ConfigIssue
from render.validate import validate_text


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("upgrade", help="upgrade platform.yaml to the current apiVersion")
    parser.add_argument("path", nargs="?", default="platform.yaml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    text = loader.read_text(path, args.path)
    document = loader.parse(text, args.path)
    data = document.data if isinstance(document.data, dict) else {}
    version = data.get("apiVersion")
    if not isinstance(version, str):
        line, col = document.positions.of_value(("apiVersion",))
        raise ConfigErrors([ConfigIssue(args.path, line, col, "apiVersion", "missing or not a string")])
    try:
        steps = upgrade.upgrade_path(version)
    except ValueError as exc:
        line, col = document.positions.of_value(("apiVersion",))
        raise ConfigErrors([ConfigIssue(args.path, line, col, "apiVersion", str(exc))]) from None
    if not steps:
        print(f"{args.path} is already {version}")
        return 0
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    tree = yaml.load(text)
    for _, to_version, migration in steps:
        migration(tree)
        tree["apiVersion"] = to_version
    out = io.StringIO()
    yaml.dump(tree, out)
    upgraded = out.getvalue()
    validate_text(upgraded, args.path)  # an upgrade that does not validate is not written
    backup = path.with_name(path.name + f".{version.replace('/', '-')}.bak")
    if backup.exists():
        raise UsageError(f"backup {backup} already exists; move it away first")
    shutil.copy2(path, backup)
    write_atomic(path, upgraded, mode=path.stat().st_mode & 0o777)
    print(f"upgraded {args.path}: {' -> '.join([version, *(to for _, to, _ in steps)])} (backup: {backup})")
    return 0

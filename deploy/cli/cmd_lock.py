"""`platform lock [PATH]`: resolve every environment with uv into environments.lock."""

from __future__ import annotations

import argparse
from pathlib import Path

from deploy.cli.common import CommandError, add_config_argument, load


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "lock", help="resolve every environment to exact versions in environments.lock"
    )
    add_config_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploy.environments import lock, uv
    from deploy.files import write_atomic

    platform = load(args)
    path = lock.lock_path(Path(args.path))
    try:
        previous = lock.read(path) or {}
    except lock.LockError:
        previous = {}
    try:
        entries = lock.lock_all(platform)
    except uv.UvError as exc:
        raise CommandError(f"resolving the environments failed:\n{exc}") from None
    write_atomic(path, lock.dumps(entries))
    changed = sorted(name for name in set(entries) | set(previous) if entries.get(name) != previous.get(name))
    summary = f"changed: {', '.join(changed)}" if changed else "unchanged"
    print(f"locked {len(entries)} environments into {path} ({summary})")
    return 0

"""`platform comment --base DIR --head DIR`: the pull-request comment, in Markdown.

Each DIR is a build (rendered files) that may also hold validation.json, plan.json
(`platform plan --json`), plan-error.txt and platform.yaml (its source); CI writes them
with `python -m deploy.gitops.ci snapshot`. A missing base DIR means "no platform yet".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.cli.common import UsageError


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("comment", help="the pull-request comment for two builds (Markdown)")
    parser.add_argument("--base", required=True, metavar="DIR", help="build of the base branch")
    parser.add_argument("--head", required=True, metavar="DIR", help="build of the pull request")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploy.gitops import snapshot
    from deploy.gitops.comment import render_comment

    head = Path(args.head)
    if not head.is_dir():
        raise UsageError(f"--head {args.head}: no such directory")
    sys.stdout.write(render_comment(snapshot.read(Path(args.base)), snapshot.read(head)))
    return 0

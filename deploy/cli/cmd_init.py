"""`platform init [DIR] --target local|aws|gcp`: a commented starter platform.yaml."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from deploy.cli.common import UsageError
from deploy.files import write_atomic
from render.starter import starter_yaml
from render.validate import validate_text


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("init", help="write a starter platform.yaml (never overwrites)")
    parser.add_argument("directory", nargs="?", default=".", help="where to create it (default: .)")
    parser.add_argument("--target", choices=["local", "aws", "gcp"], default="local")
    parser.add_argument("--name", help="platform name (default: derived from the directory name)")
    parser.set_defaults(func=run)


def _name_from(directory: Path) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-")
    slug = re.sub(r"^[^a-z]+", "", slug)[:31].rstrip("-")
    return slug if len(slug) >= 2 else "platform"


def run(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    target = directory / "platform.yaml"
    if target.exists():
        raise UsageError(f"{target} already exists; refusing to overwrite it")
    name = args.name or _name_from(directory)
    text = starter_yaml(name, args.target)
    validate_text(text, str(target))  # a bad --name is reported, nothing written
    files = {Path("platform.yaml"): text, **_extra_files(args.target)}
    for relative, content in files.items():
        path = directory / relative
        if path.exists():
            continue  # never overwrite what the admin already has
        write_atomic(path, content)
    print(f"wrote {target} (target {args.target}); next: platform validate {target}")
    return 0


def _extra_files(target: str) -> dict[Path, str]:
    """The CI workflows that make the new repository a GitOps platform repository."""
    from deploy.gitops.workflows import workflow_files

    return {Path(path): text for path, text in workflow_files(target).items()}

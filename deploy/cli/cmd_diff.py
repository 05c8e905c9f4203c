"""`platform diff [PATH] [--against DIR|GIT_REF]`: what a change to platform.yaml changes
in the rendered output, file by file and Terraform resource by resource."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deploy.cli.common import CommandError, UsageError, add_config_argument, print_json

DEFAULT_AGAINST = "build"


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("diff", help="show what a change to platform.yaml changes in build/")
    add_config_argument(parser)
    parser.add_argument(
        "--against",
        default=DEFAULT_AGAINST,
        metavar="DIR|GIT_REF",
        help=f"a build directory or a git revision of platform.yaml (default: {DEFAULT_AGAINST}/)",
    )
    parser.add_argument("--target", choices=("local", "aws", "gcp"), help="render for this target")
    parser.add_argument("--json", action="store_true", help="machine-readable diff on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploy.cli.cmd_render import render_files
    from render.diffing import diff_builds, format_text

    against = Path(args.against)
    if against.is_dir():
        old, target = _from_directory(against, args.target)
    else:
        old, target = _from_revision(Path(args.path), args.against, args.target), args.target
    new = render_files(args.path, target)
    difference = diff_builds(old, new)
    if args.json:
        print_json(difference.as_dict())
    else:
        print(format_text(difference), end="")
    return 0


def _from_directory(directory: Path, target: str | None) -> tuple[dict[str, bytes], str | None]:
    """The build in `directory`, and the target it was rendered for (unless one is given)."""
    from deploy.build_dir import MANIFEST, read_tree

    files = read_tree(directory)
    if target is None and MANIFEST in files:
        try:
            target = json.loads(files[MANIFEST]).get("target")
        except ValueError:
            target = None
    return files, target


def _from_revision(path: Path, revision: str, target: str | None) -> dict[str, bytes]:
    """Render platform.yaml as committed at `revision`, in memory ({} if it did not exist)."""
    from deploy.build_dir import GitError, git_file_at, validate_for_target
    from render import loader
    from render.build import RenderError, render

    try:
        text = git_file_at(path, revision)
    except GitError as exc:
        if revision == DEFAULT_AGAINST:
            raise UsageError(f"no build directory {revision}/ yet: run `platform render` first") from None
        raise UsageError(f"--against {exc}") from None
    if text is None:
        print(f"({path.name} does not exist at {revision}: everything is new)")
        return {}
    platform = validate_for_target(loader.parse(text, f"{revision}:{path}"), target)
    try:
        return render(platform, target)
    except RenderError as exc:
        raise CommandError(f"rendering {path.name} at {revision} failed: {exc}") from None

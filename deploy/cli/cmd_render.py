"""`platform render [PATH] [--out DIR] [--target T] [--check]`: write (or check) build/."""

from __future__ import annotations

import argparse
from pathlib import Path

from deploy.cli.common import CommandError, UsageError, add_config_argument

DEFAULT_OUT = "build"
TARGETS = ("local", "aws", "gcp")


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("render", help="render platform.yaml into build/ (atomically)")
    add_config_argument(parser)
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"build directory (default: {DEFAULT_OUT}/)")
    parser.add_argument("--target", choices=TARGETS, help="render for this target (default: the file's)")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 naming the files if --out is stale"
    )
    parser.set_defaults(func=run)


def render_files(path: str, target: str | None) -> dict[str, bytes]:
    """Validate (for `target`) and render in memory; render failures become one-line errors."""
    from deploy.build_dir import load_for_target
    from render.build import RenderError, render

    platform = load_for_target(Path(path), path, target)
    try:
        return render(platform, target)
    except RenderError as exc:
        raise CommandError(f"render failed, nothing written: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from deploy.build_dir import compare, is_replaceable, read_tree
    from deploy.files import replace_tree_atomic
    from render.build import MANIFEST

    files = render_files(args.path, args.target)
    out = Path(args.out)
    if args.check:
        staleness = compare(files, read_tree(out) if out.is_dir() else {})
        if staleness.up_to_date:
            print(f"{args.out}/ is up to date ({len(files)} files)")
            return 0
        for line in staleness.lines():
            print(line)
        changed = len(staleness.lines())
        raise CommandError(f"{args.out}/ is out of date ({changed} file(s)); run `platform render`")
    if not is_replaceable(out):
        raise UsageError(
            f"--out {args.out} exists and is not a graticule build (no {MANIFEST}); "
            "refusing to replace it: choose an empty or new directory"
        )
    replace_tree_atomic(out, files)
    print(f"rendered {len(files)} files to {args.out}/")
    return 0

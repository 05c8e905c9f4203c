"""`platform`: the command line of graticule.

Each subcommand lives in its own module `deploy/cli/cmd_<name>.py` exposing
`register(subcommands)`; this file only discovers them and maps outcomes to exit codes:
0 ok, 1 runtime failure, 2 invalid input (always located, never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pkgutil
import sys

# jsii (under cdktf) prints a Node end-of-life banner on every run; users never need it.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20,21,22")
# pydantic otherwise reads every installed distribution's entry points on the first model,
# looking for plugins (~15 ms on each run of every command); graticule uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from deploy import cli
from deploy.errors import PlatformError
from deploy.runtime import env
from graticule._version import __version__
from render.errors import ConfigErrors, MissingPrerequisite

EXIT_OK, EXIT_FAILURE, EXIT_INVALID = 0, 1, 2


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command` (the subcommand about to run) only its module
    is imported, so one command does not pay for every other command's imports."""
    parser = argparse.ArgumentParser(
        prog="platform",
        description="Validate, render and apply a graticule platform.yaml.",
    )
    parser.add_argument("--version", action="version", version=f"platform (graticule) {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = sorted(module.name for module in pkgutil.iter_modules(cli.__path__) if module.name.startswith("cmd_"))
    if command is not None and f"cmd_{command}" in names:
        names = [f"cmd_{command}"]  # cmd_<name>.py registers the subcommand <name>
    for name in names:
        importlib.import_module(f"deploy.cli.{name}").register(subcommands)
    return parser


PLATFORM_MISSING = (
    "platform: this is the SDK-only install of graticule ({error}); the `platform` command needs the "
    "platform install: pip install 'graticule[platform]'"
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(argv[0] if argv else None).parse_args(argv)
        return _run(args)
    except ModuleNotFoundError as exc:
        if not _sdk_only():
            raise  # the platform is installed: a real bug, not a missing extra
        print(PLATFORM_MISSING.format(error=exc), file=sys.stderr)
        return EXIT_INVALID


def _sdk_only() -> bool:
    """`pip install graticule` is the SDK; the CLI's own needs come with the [platform] extra."""
    return importlib.util.find_spec("pydantic") is None


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or EXIT_OK)
    except ConfigErrors as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return EXIT_INVALID
    except MissingPrerequisite as exc:
        print(f"platform {args.command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except PlatformError as exc:  # deploy.errors: UserError exits 2, RuntimeFailure 1
        print(f"platform {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `platform schema | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # the last line of defence: a message, never a traceback
        if isinstance(exc, ModuleNotFoundError) and _sdk_only():
            raise
        if os.environ.get(env.DEBUG):
            raise
        print(f"platform {args.command}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"(set {env.DEBUG}=1 for the traceback)", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())

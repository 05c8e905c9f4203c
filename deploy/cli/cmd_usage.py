"""`platform usage [PATH] [--month YYYY-MM] [--budget B] [--user U] [--json] [--db URL] [--state DIR]`:
spend per budget and per user from the usage ledger, with cores in use and clusters running now."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from deploy.cli.common import CommandError, UsageError, add_config_argument, load, print_json
from deploy.cli.terminal import fancy_stdout
from deploy.runtime import env

STATE_DIR_ENV = env.STATE_DIR


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("usage", help="spend per budget and per user, from the usage ledger")
    add_config_argument(parser)
    parser.add_argument("--month", help="calendar month, UTC, as YYYY-MM (default: this month)")
    parser.add_argument("--budget", help="only this budget")
    parser.add_argument("--user", help="only this user")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument(
        "--db", help=f"ledger database URL (default: ${env.LEDGER_URL}, else SQLite in the state directory)"
    )
    parser.add_argument("--state", help="state directory of a local platform (default: .platform/<name>/)")
    parser.set_defaults(func=run)


def _state_dir(args: argparse.Namespace, name: str) -> Path:
    from deploy.runtime.state import default_state_dir

    if args.state:
        return Path(args.state).absolute()
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV]).absolute()
    return default_state_dir(name)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from deploy.budgets.daily import spend_per_day
    from deploy.budgets.policy import Policy
    from deploy.budgets.report import format_report, usage_report
    from deploy.ledger import LEDGER_URL_ENV, Ledger, month_named, month_of
    from deploy.ledger.engine import SQLITE_FILENAME

    platform = load(args)
    try:
        month = month_named(args.month) if args.month else None
    except ValueError as exc:
        raise UsageError(f"--month: {exc}") from None
    if args.budget and args.budget not in platform.budgets:
        declared = ", ".join(platform.budgets) or "none declared"
        raise UsageError(f"--budget: unknown budget {args.budget!r}; declared: {declared}")
    state = _state_dir(args, platform.name)
    if not args.db and not os.environ.get(LEDGER_URL_ENV) and not (state / SQLITE_FILENAME).exists():
        raise CommandError(
            f"no usage ledger at {state / SQLITE_FILENAME}: has the platform run (`platform up`)? "
            "Otherwise give --state DIR or --db URL"
        )
    try:
        ledger = Ledger.open(args.db, state)
        try:
            report = usage_report(ledger, Policy.from_platform(platform), month, args.budget, args.user)
            days = [] if args.json else spend_per_day(ledger, month or month_of(ledger.clock()), args.budget,
                                                      args.user)
        finally:
            ledger.close()
    except SQLAlchemyError as exc:
        detail = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
        raise CommandError(f"cannot read the usage ledger: {type(exc).__name__}: {detail}") from None
    if args.json:
        print_json(report)
    elif fancy_stdout():
        _print_usage_table(report)
        _print_chart(days)
    else:
        print(format_report(report))
        _print_chart(days)
    return 0


def _print_usage_table(report: dict) -> None:
    """Budgets with their users beneath, on a terminal (the plain text is format_report's)."""
    from rich.console import Console
    from rich.table import Table

    table = Table("BUDGET / USER", "SPENT", "LIMIT", "%", "CORES", "CLUSTERS", header_style="bold",
                  title=f"usage for {report['month']} (UTC; budgets reset {report['resets_at']})")
    for b in report["budgets"]:
        limit = f"${b['limit_usd']:.2f}" if b["limit_usd"] is not None else "(not declared)"
        percent = f"{b['percent']:.1f}" if b["percent"] is not None else "-"
        over = b["percent"] is not None and b["percent"] >= 100
        cap = f"/{b['max_cores']}" if b["max_cores"] is not None else ""
        table.add_row(b["name"], f"${b['spent_usd']:.2f}", limit, percent, f"{b['cores_in_use']:g}{cap}",
                      str(b["clusters_running"]), style="bold red" if over else "bold")
        for u in b["users"]:
            table.add_row(f"  {u['name']}", f"${u['spent_usd']:.2f}", "", "", f"{u['cores_in_use']:g}",
                          str(u["clusters_running"]))
    Console().print(table)


def _print_chart(days: list[tuple[str, float]]) -> None:
    """A bar per day; coloured on a terminal, `#` bars when piped or under CI."""
    import sys

    from deploy.budgets.daily import chart_lines
    from deploy.console import is_plain

    if not days:
        return
    if is_plain() or not sys.stdout.isatty():
        print("\n".join(["", *chart_lines(days)]))
        return
    from rich.console import Console
    from rich.text import Text

    console = Console()
    console.print()
    for line in chart_lines(days, bar="█"):
        console.print(Text(line, style="cyan" if "█" in line else "bold"), highlight=False)

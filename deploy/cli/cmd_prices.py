"""`platform prices refresh --cloud aws`: rewrite the aws on-demand instance prices of the
bundled price table (render/data/prices.json) from the AWS Price List API. For maintainers:
it needs credentials allowed `pricing:GetProducts`."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from deploy.cli.common import CommandError, UsageError

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "render" / "data" / "prices.json"


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("prices", help="maintainers: refresh the bundled price table")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    refresh = actions.add_parser(
        "refresh", help="rewrite the aws instance prices in render/data/prices.json from the AWS Price List API"
    )
    refresh.add_argument("--cloud", choices=("aws",), required=True, help="only aws (gcp prices are kept by hand)")
    refresh.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="price table to rewrite")
    refresh.add_argument("--date", help="date to record (default: today, UTC)")
    refresh.add_argument("--add-types", default="", help="comma-separated instance types to price in every region")
    refresh.add_argument(
        "--allow-missing", action="store_true", help="keep the old price of a type the API no longer lists"
    )
    refresh.add_argument("--endpoint-url", help="Pricing API endpoint (e.g. a test server)")
    refresh.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploy.cloud.catalogs import aws_prices
    from deploy.files import write_atomic

    date = args.date or datetime.datetime.now(datetime.UTC).date().isoformat()
    if not _is_date(date):
        raise UsageError(f"--date {date!r}: expected YYYY-MM-DD")
    table = _read_table(args.table)
    add_types = _known_types([name.strip() for name in args.add_types.split(",") if name.strip()])
    refresh = aws_prices.fetch_from_api(table, add_types, args.endpoint_url)
    if refresh.missing:
        listed = ", ".join(f"{name} in {region}" for region, name in refresh.missing)
        if not args.allow_missing:
            raise CommandError(
                f"the Pricing API has no on-demand Linux price for {listed}; {args.table} was left as it was "
                "(--allow-missing keeps the old prices)"
            )
        print(f"warning: no price from the Pricing API for {listed}: old prices kept, new types left out",
              file=sys.stderr)  # fmt: skip
    fresh = aws_prices.merged(table, refresh, date)
    write_atomic(args.table, aws_prices.encode(fresh))
    changed = _count_changes(table, fresh)
    print(f"wrote {args.table}: {changed} aws prices changed or added, dated {date}")
    return 0


def _read_table(path: Path) -> dict:
    try:
        table = json.loads(path.read_text("utf-8"))
        regions = table["aws"]["regions"]
        if not all(isinstance(block.get("instances"), dict) for block in regions.values()):
            raise KeyError("instances")
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{path}: not a price table (aws.regions.<region>.instances): {exc}") from None
    return table


def _known_types(names: list[str]) -> list[str]:
    """`names`, if the bundled aws catalog has them all: validation needs a priced type to exist."""
    import difflib

    from render import catalog

    known = set(catalog.load("aws").names())
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"--add-types: {name!r} is not in the bundled aws catalog{hint}")
    return names


def _is_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _count_changes(before: dict, after: dict) -> int:
    count = 0
    for region, block in after["aws"]["regions"].items():
        old = before["aws"]["regions"][region]["instances"]
        count += sum(1 for name, price in block["instances"].items() if old.get(name) != price)
    return count

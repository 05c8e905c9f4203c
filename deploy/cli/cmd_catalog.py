"""`platform catalog refresh --cloud aws|gcp`: rewrite a bundled machine catalog
(render/data/catalog_<cloud>.json) from the cloud's own API. For maintainers: it needs
read-only credentials (aws: ec2:Describe*; gcp: compute.*.list on `--project`)."""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from deploy.cli.common import CommandError, UsageError

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "render" / "data"


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("catalog", help="maintainers: refresh the bundled machine catalogs")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    refresh = actions.add_parser("refresh", help="rewrite render/data/catalog_<cloud>.json from the cloud's API")
    refresh.add_argument("--cloud", choices=("aws", "gcp"), required=True)
    refresh.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory of the data files")
    refresh.add_argument("--date", help="date to record (default: today, UTC)")
    refresh.add_argument("--source-note", help="recorded after the source, e.g. who answered the API calls")
    refresh.add_argument("--regions", help="aws: comma-separated regions (default: every enabled region)")
    refresh.add_argument("--endpoint-url", help="aws: EC2 endpoint (e.g. a moto server)")
    refresh.add_argument("--project", help="gcp: project whose Compute API to list")
    refresh.add_argument("--from-csv", type=Path, help="gcp: directory of gcloud CSV exports instead of the API")
    refresh.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploy.files import write_atomic
    from render.catalog import encode

    date = args.date or datetime.datetime.now(datetime.UTC).date().isoformat()
    if args.cloud == "aws":
        catalog, about = _aws(args, date)
    else:
        catalog, about = _gcp(args, date)
    if not catalog.names():
        raise CommandError(f"the {args.cloud} API listed no machine types; the catalog was left as it was")
    if args.source_note:
        catalog.source = f"{catalog.source}; {args.source_note}"
    target = args.out / f"catalog_{args.cloud}.json"
    write_atomic(target, encode(catalog, about))
    print(f"wrote {target}: {len(catalog.names())} machine types in {len(catalog.regions)} regions", file=sys.stdout)
    return 0


def _aws(args: argparse.Namespace, date: str):
    from deploy.cloud.catalogs import aws

    regions = [name.strip() for name in args.regions.split(",")] if args.regions else None
    return aws.fetch_from_api(date, regions, args.endpoint_url), aws.ABOUT


def _gcp(args: argparse.Namespace, date: str):
    from deploy.cloud.catalogs import gcp

    if args.from_csv:
        files = {
            name: (args.from_csv / f"{name}.csv")
            for name in ("machinetyperegion", "acceleratortyperegion", "regions", "zones")
        }
        missing = [str(path) for path in files.values() if not path.is_file()]
        if missing:
            raise UsageError(f"--from-csv: missing {', '.join(missing)}")
        texts = {name: path.read_text("utf-8") for name, path in files.items()}
        source = f"gcloud compute machine-types/accelerator-types/regions/zones list, CSV exports ({date})"
        catalog = gcp.from_csv_exports(
            texts["machinetyperegion"], texts["acceleratortyperegion"], texts["regions"], texts["zones"], date, source
        )
        return catalog, gcp.ABOUT
    if not args.project:
        raise UsageError("--cloud gcp needs --project (or --from-csv DIR)")
    return gcp.fetch_from_api(args.project, date), gcp.ABOUT

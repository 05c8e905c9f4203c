"""`platform import nebari NEBARI_CONFIG`: a platform.yaml from a Nebari (or QHub) config.

Writes a platform.yaml that validates as written (never over an existing file without
--force, atomically) and prints what was mapped, invented and dropped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.cli.common import CommandError, UsageError
from deploy.files import write_atomic
from deploy.importers.nebari import ImportOptions, ImportRefused, import_nebari
from deploy.importers.nebari.keycloak import parse_realm
from render import loader
from render.errors import ConfigErrors, ConfigIssue, dotted


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("import", help="write a platform.yaml from another platform's config")
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    nebari = sources.add_parser("nebari", help="from a Nebari (or QHub 0.3/0.4) nebari-config.yaml")
    nebari.add_argument("config", metavar="NEBARI_CONFIG")
    nebari.add_argument("--keycloak-export", metavar="REALM.json", help="users and groups from a realm export")
    nebari.add_argument("-o", "--output", default="platform.yaml", help="where to write (default: platform.yaml)")
    nebari.add_argument("--force", action="store_true", help="overwrite an existing output file")
    nebari.add_argument(
        "--target",
        choices=["local", "aws", "gcp"],
        help="where the platform runs (default: Nebari's provider; required for azure and do)",
    )
    nebari.add_argument("--admin", help="the admin user, when there is no Keycloak export")
    nebari.add_argument("--budget-usd", type=float, default=100.0, help="monthly budget per group (default 100)")
    nebari.add_argument(
        "--budget-max-cores", type=int, help="cores per budget (default: 16, or two workers of the largest profile)"
    )
    nebari.add_argument("--account-id", help="AWS account id (12 digits)")
    nebari.add_argument("--state-bucket", help="Terraform state bucket")
    nebari.add_argument("--ci-repository", help="owner/name of the repository that holds platform.yaml")
    nebari.add_argument("--github-org", help="GitHub organization whose members may log in")
    nebari.add_argument("--vpc-cidr", help="the platform VPC's range, e.g. 10.50.0.0/16")
    nebari.add_argument("--region", help="cloud region (default: Nebari's)")
    nebari.add_argument("--gcp-project", help="GCP project id (default: Nebari's)")
    nebari.set_defaults(func=run_nebari)


def run_nebari(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.exists() and not args.force:
        raise UsageError(f"{output} exists; pass --force to overwrite it (or -o another path)")
    if args.budget_usd <= 0 or (args.budget_max_cores is not None and args.budget_max_cores <= 0):
        raise UsageError("--budget-usd and --budget-max-cores must be greater than zero")
    if args.admin is not None and args.keycloak_export:
        raise UsageError("--admin is for imports without --keycloak-export (the export names the admins)")
    document = loader.load(Path(args.config), args.config)  # located errors for unreadable YAML
    realm = None
    if args.keycloak_export:
        realm = parse_realm(loader.read_text(Path(args.keycloak_export), args.keycloak_export), args.keycloak_export)
    options = ImportOptions(
        admin=args.admin,
        target=args.target,
        budget_usd=args.budget_usd,
        budget_max_cores=args.budget_max_cores,
        account_id=args.account_id,
        state_bucket=args.state_bucket,
        ci_repository=args.ci_repository,
        github_org=args.github_org,
        vpc_cidr=args.vpc_cidr,
        region=args.region,
        gcp_project=args.gcp_project,
    )
    try:
        result = import_nebari(document.data, Path(args.config).name, options, realm)
    except ImportRefused as exc:
        line, col = document.positions.of_value(exc.path)
        raise ConfigErrors([ConfigIssue(args.config, line, col, dotted(exc.path), exc.message)]) from None
    except ValueError as exc:  # a value Nebari would not have accepted either (e.g. a size)
        raise UsageError(f"{args.config}: {exc}") from None
    except ConfigErrors as exc:
        problems = "; ".join(str(issue) for issue in exc.issues[:5])
        raise CommandError(
            f"the imported platform.yaml does not validate (an importer bug; nothing written): {problems}"
        ) from None
    write_atomic(output, result.text)
    sys.stdout.write(result.report.format())
    print(
        f"\nwrote {output} (target {result.target}); next: `platform validate {output}`, "
        f"then `platform up` (local) or `platform plan`"
    )
    return 0

"""Nebari's provider section -> `target` and the `cloud.<target>` block.

What Nebari's file does not have (account id, state bucket, GCP network range, and for
Azure/DigitalOcean configs the region) comes from flags or becomes a marked placeholder
that still validates.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from deploy.importers.nebari import defaults
from deploy.importers.nebari.options import ImportOptions, ImportRefused
from deploy.importers.nebari.report import Report
from deploy.importers.nebari.source import UNSUPPORTED_PROVIDERS, Source

PLACEHOLDER_REGION = {"aws": "us-east-1", "gcp": "us-central1"}
PLACEHOLDER_GCP_CIDR = "10.50.0.0/16"
_GCP_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")


@dataclass
class ImportedCloud:
    target: str
    source_cloud: str | None  # aws | gcp when Nebari's provider has machine types here
    region: str | None
    block: dict | None  # cloud.<target>
    todos: dict[tuple, str] = field(default_factory=dict)  # path inside cloud.<target> -> TODO


def choose_target(provider: str, options: ImportOptions, report: Report) -> str:
    if options.target:
        if options.target != provider:
            report.note(f"Nebari provider {provider!r} imported for target {options.target!r} (--target)")
        return options.target
    if provider in UNSUPPORTED_PROVIDERS:
        raise ImportRefused(
            ("provider",),
            (
                f"Nebari provider {provider!r} ({UNSUPPORTED_PROVIDERS[provider]}) has no equivalent: graticule runs "
                "on aws, gcp or this machine (local). Re-run with --target aws or --target gcp to import everything "
                "else; machine types are then chosen by size and marked to review"
            ),
        )
    if provider in ("local", "existing"):
        what = "a local Kubernetes (kind/minikube)" if provider == "local" else "an existing Kubernetes cluster"
        report.note(
            f"Nebari ran on {what}: imported as target local (this machine); "
            "re-run with --target aws|gcp to move to a cloud"
        )
        return "local"
    return provider


def import_cloud(
    src: Source, provider: str, target: str, name: str, options: ImportOptions, report: Report
) -> ImportedCloud:
    section = (src.provider_section(provider)[0],)
    source_cloud = provider if provider in ("aws", "gcp") and provider == target else None
    if target == "local":
        return ImportedCloud("local", None, None, None)
    cloud = ImportedCloud(target, source_cloud, None, {})
    region = options.region or (src.take(*section, "region") if source_cloud else None)
    if source_cloud and not options.region:
        report.map((*section, "region"), f"cloud.{target}.region")
    if region is None:
        region = PLACEHOLDER_REGION[target]
        cloud.todos[("region",)] = f"TODO(import): the {target} region (--region); Nebari's was on {provider}"
        report.invent(f"cloud.{target}.region", f"{region} (placeholder)")
    cloud.region = str(region)
    block = cloud.block
    assert block is not None
    if target == "aws":
        block["region"] = cloud.region
        block["account_id"] = _flag(
            cloud,
            report,
            "account_id",
            options.account_id,
            "000000000000",
            "the 12-digit AWS account id (--account-id)",
        )
        block["vpc_cidr"] = options.vpc_cidr or _aws_cidr(src, section, source_cloud, report)
        zones = src.take(*section, "availability_zones") if source_cloud else None
        block["zones"] = min(max(len(zones), 1), 6) if isinstance(zones, list) and zones else 2
        if isinstance(zones, list) and zones:
            report.map((*section, "availability_zones"), "cloud.aws.zones", f"{block['zones']} zones")
    else:
        block["project"] = _gcp_project(src, section, source_cloud, options, cloud, report)
        block["region"] = cloud.region
        block["vpc_cidr"] = _flag(
            cloud,
            report,
            "vpc_cidr",
            options.vpc_cidr,
            PLACEHOLDER_GCP_CIDR,
            "the network range for the platform's VPC (--vpc-cidr); Nebari used GKE's",
        )
    block["egress"] = "nat"
    block["state_bucket"] = _flag(
        cloud,
        report,
        "state_bucket",
        options.state_bucket,
        f"{name}-tfstate",
        "the Terraform state bucket (--state-bucket); `platform bootstrap` creates it",
    )
    return cloud


def _flag(cloud: ImportedCloud, report: Report, key: str, given: str | None, placeholder: str, what: str) -> str:
    if given:
        return given
    cloud.todos[(key,)] = f"TODO(import): {what}"
    report.invent(f"cloud.{cloud.target}.{key}", f"{placeholder} (placeholder: {what})")
    return placeholder


def _aws_cidr(src: Source, section: tuple, source_cloud: str | None, report: Report) -> str:
    cidr = src.take(*section, "vpc_cidr_block") if source_cloud else None
    if cidr is not None:
        report.map((*section, "vpc_cidr_block"), "cloud.aws.vpc_cidr")
    try:
        network = ipaddress.IPv4Network(str(cidr or defaults.AWS_VPC_CIDR), strict=True)
        if 16 <= network.prefixlen <= 24 and network.is_private:
            return str(network)
    except ValueError:
        pass
    report.note(f"vpc_cidr_block {cidr!r} is not a private /16../24 range: {defaults.AWS_VPC_CIDR} used")
    return defaults.AWS_VPC_CIDR


def _gcp_project(
    src: Source, section: tuple, source_cloud: str | None, options: ImportOptions, cloud: ImportedCloud, report: Report
) -> str:
    project = options.gcp_project or (src.take(*section, "project") if source_cloud else None)
    if isinstance(project, str) and _GCP_PROJECT.match(project):
        if not options.gcp_project:
            report.map((*section, "project"), "cloud.gcp.project")
        return project
    cloud.todos[("project",)] = "TODO(import): the GCP project id (--gcp-project)"
    report.invent("cloud.gcp.project", "change-me-project (placeholder)")
    return "change-me-project"

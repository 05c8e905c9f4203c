"""What the admin tells the importer beyond the Nebari file: flags, or placeholders."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImportOptions:
    admin: str | None = None  # the one admin user when there is no Keycloak export
    target: str | None = None  # aws | gcp: required for Nebari providers with no equivalent
    budget_usd: float = 100.0  # per group and month: conservative, marked to review
    budget_max_cores: int | None = None  # None: 16, or two workers of the largest profile if more
    account_id: str | None = None
    state_bucket: str | None = None
    ci_repository: str | None = None
    github_org: str | None = None
    vpc_cidr: str | None = None
    region: str | None = None
    gcp_project: str | None = None


class ImportRefused(Exception):
    """The Nebari config cannot be imported as asked; `path` locates the reason in it."""

    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = path
        self.message = message

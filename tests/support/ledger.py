"""Fixtures for budget tests: a ledger URL on SQLite and on a real PostgreSQL, and small
platforms whose budgets the test chooses."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest

from render.schema import Platform
from render.validate import validate_text
from tests.support.postgres import postgres_server  # noqa: F401  (fixture used via getfixturevalue)

# 2026-11-15 12:00 UTC: mid-month, so tests choose when to cross a month boundary.
MID_NOVEMBER = 1794744000.0
DECEMBER_1 = 1796083200.0


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    else:
        yield request.getfixturevalue("postgres_server").fresh_database()


def platform_text(budgets: str, users: str | None = None, extra: str = "") -> str:
    users = users or textwrap.dedent(
        """\
        - name: alice
          email: alice@example.org
          groups: [team]
        - name: bob
          groups: [team]
          budget: solo
        - name: carol
          groups: [nobudget]
        """
    )
    return (
        textwrap.dedent(
            """\
            apiVersion: graticule/v1
            name: budgettest
            target: local
            hub:
              auth: {provider: local}
              default_profile: small
            groups:
              team: {budget: team, profiles: [small], environments: [default]}
              nobudget: {profiles: [small], environments: [default]}
            users:
            """
        )
        + textwrap.indent(users, "  ")
        + "budgets:\n"
        + textwrap.indent(textwrap.dedent(budgets), "  ")
        + textwrap.dedent(
            """\
            profiles:
              small: {cpu: 2, memory: 4GiB, price_per_hour_usd: 3.6}
            dask: {default_profile: small, max_workers: 50}
            environments:
              default: {python: "3.11", packages: ["dask[distributed]==2026.8.0"]}
            """
        )
        + extra
    )


def make_platform(budgets: str, users: str | None = None, extra: str = "") -> Platform:
    return validate_text(platform_text(budgets, users, extra))


def peak_cores(rows) -> float:
    """Most cores held at any instant by intervals (rows with started_at, ended_at, cores);
    at equal times an end comes before a start."""
    starts = [(r.started_at, 1, r.cores) for r in rows]
    events = sorted(starts + [(r.ended_at, 0, -r.cores) for r in rows if r.ended_at is not None])
    held = peak = 0.0
    for _, _, delta in events:
        held += delta
        peak = max(peak, held)
    return peak


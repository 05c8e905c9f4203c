"""The hub's and the gateway's database URL: the operator's PostgreSQL (GRATICULE_DATABASE_URL)
or SQLite in the state directory. Read by the rendered configs at start; never logged.

JupyterHub, dask-gateway and the usage ledger may share one PostgreSQL database: their
tables (and PostgreSQL's relations named after them) are disjoint, and each keeps its own
version table (alembic_version, none, graticule_ledger_version).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from deploy.runtime import env

# psycopg (3) is what the platform installs; SQLAlchemy's bare postgresql:// means psycopg2.
_DRIVERLESS = ("postgresql://", "postgres://")


def sqlalchemy_url(url: str) -> str:
    """An operator's URL with the installed driver named (postgresql+psycopg://)."""
    for prefix in _DRIVERLESS:
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def database_url(environ: Mapping[str, str], sqlite_file: Path) -> str:
    """The operator's database when one is given, else SQLite at `sqlite_file`."""
    given = environ.get(env.DATABASE_URL, "").strip()
    return sqlalchemy_url(given) if given else f"sqlite:///{sqlite_file}"

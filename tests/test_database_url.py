"""The operator's database URL (GRATICULE_DATABASE_URL, the hub VM's `database-url` secret):
the rendered hub and gateway configs use it, or SQLite in the state directory without it;
dask-gateway's tables are valid on PostgreSQL; JupyterHub's, dask-gateway's and the
ledger's tables can share one database. (The real PostgreSQL run is
tests/test_hub_postgres_e2e.py.)"""

from __future__ import annotations

import sqlalchemy as sa
from jupyterhub import orm
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable

from deploy.gateway import base  # noqa: F401  (adapts dask-gateway's tables on import)
from deploy.ledger import models as ledger_models
from deploy.ledger.engine import VERSION_TABLE
from deploy.runtime.database import database_url, sqlalchemy_url
from render.validate import validate_text
from tests.support.rendered_config import (
    GATEWAY_RUNTIME_ENV,
    HUB_RUNTIME_ENV,
    load_gateway_config,
    load_hub_config,
    render_gateway_config,
)

URL = "postgresql://hub:pa55@db.internal:5432/graticule"
WITH_DRIVER = "postgresql+psycopg://hub:pa55@db.internal:5432/graticule"


def test_urls_name_the_installed_driver_and_sqlite_is_the_fallback(tmp_path):
    assert sqlalchemy_url(URL) == sqlalchemy_url("postgres://hub:pa55@db.internal:5432/graticule") == WITH_DRIVER
    assert sqlalchemy_url(WITH_DRIVER) == WITH_DRIVER
    assert database_url({"GRATICULE_DATABASE_URL": URL}, tmp_path / "x.sqlite") == WITH_DRIVER
    for unset in ({}, {"GRATICULE_DATABASE_URL": "  "}):
        assert database_url(unset, tmp_path / "x.sqlite") == f"sqlite:///{tmp_path / 'x.sqlite'}"


def test_rendered_configs_read_the_database_url_at_start(example_text, tmp_path, monkeypatch):
    for key, value in {**HUB_RUNTIME_ENV, **GATEWAY_RUNTIME_ENV}.items():
        monkeypatch.setenv(key, value)
    state = tmp_path / "state"
    monkeypatch.setenv("GRATICULE_STATE_DIR", str(state))
    monkeypatch.setenv("GRATICULE_DATABASE_URL", URL)
    hub_build, gateway_build = tmp_path / "hub-build", tmp_path / "gateway-build"
    hub_build.mkdir()
    gateway_build.mkdir()
    gateway_config = render_gateway_config(validate_text(example_text), "aws", gateway_build)
    assert load_hub_config(example_text, "aws", hub_build).JupyterHub.db_url == WITH_DRIVER
    assert load_gateway_config(gateway_config).DBBackendBase.db_url == WITH_DRIVER
    assert URL not in (hub_build / "hub" / "jupyterhub_config.py").read_text()  # read at start, never rendered
    monkeypatch.delenv("GRATICULE_DATABASE_URL")
    assert load_hub_config(example_text, "aws", hub_build).JupyterHub.db_url == \
        f"sqlite:///{state / 'hub' / 'jupyterhub.sqlite'}"
    assert load_gateway_config(gateway_config).DBBackendBase.db_url == \
        f"sqlite:///{state / 'gateway' / 'gateway.sqlite'}"


def _ddl(table: sa.Table, dialect) -> str:
    return str(CreateTable(table).compile(dialect=dialect.dialect()))


def test_dask_gateways_tables_are_valid_on_postgresql_and_unchanged_on_sqlite():
    from dask_gateway_server.backends.db_base import clusters, workers

    pg = _ddl(clusters, postgresql) + _ddl(workers, postgresql)
    assert "BINARY(" not in pg and "token BYTEA NOT NULL" in pg  # PostgreSQL has no BINARY(n)
    assert pg.count("start_time BIGINT NOT NULL") == 2 and pg.count("stop_time BIGINT") == 2  # milliseconds
    assert "close_expected BOOLEAN NOT NULL" in pg  # written as a Python bool
    lite = _ddl(clusters, sqlite) + _ddl(workers, sqlite)
    assert "token BINARY(140) NOT NULL" in lite and "start_time INTEGER NOT NULL" in lite
    assert "close_expected INTEGER NOT NULL" in lite


def _relations(metadata: sa.MetaData) -> set[str]:
    """Tables and index names: PostgreSQL keeps both in one namespace per schema."""
    names = set(metadata.tables)
    for table in metadata.tables.values():
        names |= {index.name for index in table.indexes if index.name}
    return names


def test_the_three_sets_of_tables_cannot_clash_in_one_database():
    from dask_gateway_server.backends.db_base import metadata as gateway

    hub = _relations(orm.Base.metadata) | {"alembic_version"}
    gateway_names = _relations(gateway)  # no version table: created as declared
    ledger = _relations(ledger_models.Base.metadata) | {VERSION_TABLE}
    assert {"users", "api_tokens"} <= hub and {"clusters", "workers"} <= gateway_names
    assert {"usage_intervals", "graticule_ledger_version"} <= ledger
    assert not hub & gateway_names and not hub & ledger and not gateway_names & ledger

"""Open the ledger database: URL resolution, engine setup, migrations on open.

The URL comes from `--db`, else `GRATICULE_LEDGER_URL`, else SQLite in the state
directory (never from platform.yaml: a URL may hold a password). SQLite runs in WAL
mode so readers (`platform usage`) never block the gateway's writers.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text

from deploy.runtime import env

LEDGER_URL_ENV = env.LEDGER_URL
SQLITE_FILENAME = "ledger.sqlite"
VERSION_TABLE = "graticule_ledger_version"  # not alembic_version: the hub's DB may share a server
MIGRATIONS = Path(__file__).parent / "migrations"
# Execution option naming how SQLite opens a transaction; IMMEDIATE takes the write lock up front.
SQLITE_BEGIN = "graticule_sqlite_begin"


def default_sqlite_url(state_dir: Path) -> str:
    return f"sqlite:///{Path(state_dir).resolve() / SQLITE_FILENAME}"


def resolve_url(url: str | None = None, state_dir: Path | None = None) -> str:
    """The ledger URL: explicit, then the environment, then SQLite in the state directory."""
    if url:
        return url
    if os.environ.get(LEDGER_URL_ENV):
        return os.environ[LEDGER_URL_ENV]
    if state_dir is None:
        raise ValueError(f"no ledger URL: pass one, set {LEDGER_URL_ENV}, or give a state directory")
    return default_sqlite_url(state_dir)


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_engine(url: str) -> Engine:
    # busy timeout: concurrent admissions queue on the write lock instead of failing.
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent, safe with concurrent openers)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_table", VERSION_TABLE)
    locked = engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
    with locked.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two processes opening a fresh database at once must not both create tables.
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('graticule-ledger'))"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_engine(url: str | None = None, state_dir: Path | None = None) -> Engine:
    """An engine on the migrated ledger; creates the SQLite file (0600) if it is new."""
    resolved = resolve_url(url, state_dir)
    if resolved.startswith("sqlite:///") and state_dir is not None and not url:
        Path(state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(resolved)
    migrate(engine)
    _restrict_sqlite_file(resolved)
    return engine


def _restrict_sqlite_file(url: str) -> None:
    path = url.removeprefix("sqlite:///")
    if url.startswith("sqlite:///") and path and os.path.exists(path):
        os.chmod(path, 0o600)

"""The hub's databases on the operator's PostgreSQL (issue 13): a REAL PostgreSQL server and
the real local target with GRATICULE_DATABASE_URL and GRATICULE_LEDGER_URL set to ONE
database, as the hub VM's units get them from the `database-url` secret. JupyterHub,
dask-gateway and the usage ledger keep their tables there, nothing on the state directory;
a platform brought down and up on a FRESH state directory (a replaced hub) still knows the
user, her token, her stopped cluster and its ledger rows. The URL carries a password
(the server trusts loopback, so any would do): it must appear in no file of the platform.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import psycopg
import pytest
import requests
from dask_gateway_server.backends.db_base import JobStatus

from deploy.gateway.machines_in_use import machine_ids
from deploy.runtime.database import sqlalchemy_url
from tests.support.local_platform import local_platform
from tests.support.postgres import SUPERUSER, postgres_server  # noqa: F401  (pytest fixture)

pytestmark = pytest.mark.slow

PASSWORD = "pw-7c1e5d0a9b"
PLATFORM = """\
apiVersion: graticule/v1
name: pgtest
target: local
hub:
  auth: {provider: local}
  default_profile: small
groups:
  ocean: {budget: lab, profiles: [small], environments: [default]}
users:
  - {name: alice, groups: [ocean]}
budgets:
  lab: {monthly_usd: 1000}
profiles:
  small: {cpu: 1, memory: 1GiB, price_per_hour_usd: 36.0}  # a cent a second: spend shows
dask:
  default_profile: small
  max_workers: 1
  idle_timeout: 1h
  max_lifetime: 24h
environments:
  default: {python: "3.11", packages: ["dask[distributed]==2026.8.0"]}
"""


def _database(server) -> tuple[str, dict]:
    """A role with a password owning an empty database: the operator's URL, driverless."""
    with psycopg.connect(host="127.0.0.1", port=server.port, user=SUPERUSER, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f"CREATE ROLE hubdb LOGIN PASSWORD '{PASSWORD}'")
        conn.execute("CREATE DATABASE platform_state OWNER hubdb")
    url = f"postgresql://hubdb:{PASSWORD}@127.0.0.1:{server.port}/platform_state"
    return url, {"host": "127.0.0.1", "port": server.port, "user": "hubdb", "dbname": "platform_state"}


def _rows(connect: dict, sql: str, *args) -> list[tuple]:
    with psycopg.connect(**connect) as conn:
        return conn.execute(sql, args).fetchall()


def _wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.5)


def _login(hub_url: str, username: str, password: str) -> bool:
    """The hub's login form, as a browser submits it (with the _xsrf token)."""
    session = requests.Session()
    page = session.get(f"{hub_url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    data = {"username": username, "password": password, "_xsrf": xsrf.group(1) if xsrf else ""}
    answer = session.post(f"{hub_url}/hub/login", data=data, allow_redirects=False, timeout=60)
    return answer.status_code == 302 and any(c.name.startswith("jupyterhub-") for c in answer.cookies)


def _users_in(report: object) -> list[dict]:
    """Every per-user entry of `platform usage --json`, wherever it nests."""
    if isinstance(report, list):
        return [user for item in report for user in _users_in(item)]
    if not isinstance(report, dict):
        return []
    here = [report] if "name" in report and "spent_usd" in report and "cores_in_use" in report else []
    return here + [user for value in report.values() for user in _users_in(value)]


def _files_holding(root: Path, needle: str) -> list[Path]:
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink() and needle.encode() in path.read_bytes():
                found.append(path)
    return found


def test_hub_gateway_and_ledger_share_one_postgresql_database_across_a_replaced_hub(
        postgres_server, tmp_path):  # noqa: F811
    url, connect = _database(postgres_server)
    operator = {"GRATICULE_DATABASE_URL": url, "GRATICULE_LEDGER_URL": url}

    with local_platform(PLATFORM, tmp_path / "first", operator_env=operator) as lp:
        assert _login(lp.hub_url, "alice", "first-login-sets-it")
        token = lp.token("alice")
        me = lp.hub_api("GET", "/user", token).json()
        gateway = lp.gateway("alice", token)
        cluster = gateway.new_cluster(profile="small", workers=1)
        try:
            client = cluster.get_client()
            assert client.submit(sum, range(10)).result(timeout=120) == 45
            client.close()
            name = cluster.name
        finally:
            cluster.shutdown()
            gateway.close()
        state = lp.state_dir
        # nothing of the three on the state directory: all in PostgreSQL
        for sqlite in ("hub/jupyterhub.sqlite", "gateway/gateway.sqlite", "ledger.sqlite"):
            assert not (state / sqlite).exists(), sqlite
        assert _rows(connect, "SELECT name FROM users") == [("alice",)]
        stopped = [("alice", int(JobStatus.STOPPED))]
        _wait_for(lambda: _rows(connect, "SELECT username, status FROM clusters WHERE name = %s", name) == stopped)
        intervals = [("scheduler", True), ("worker", True)]
        _wait_for(lambda: _rows(connect, "SELECT role, ended_at IS NOT NULL FROM usage_intervals "
                                         "WHERE cluster = %s AND \"user\" = 'alice' ORDER BY role", name) == intervals)
        assert machine_ids(sqlalchemy_url(url)) == set()  # the reaper reads the gateway's tables there too
        tables = {row[0] for row in _rows(connect, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"alembic_version", "graticule_ledger_version", "workers", "api_tokens"} <= tables
        assert not _files_holding(tmp_path / "first", PASSWORD)
        # What the hub VM keeps in the secret store (DASK_GATEWAY_ENCRYPT_KEYS): the key of
        # the gateway's encrypted columns. Locally it is a file; the replaced hub gets it.
        key = (state / "gateway" / "db-encrypt.key").read_bytes()

    # A replaced hub: the platform is down; a fresh state directory, the same database.
    fresh_gateway = tmp_path / "second" / "state" / "gateway"
    fresh_gateway.mkdir(parents=True, mode=0o700)
    (fresh_gateway / "db-encrypt.key").write_bytes(key)
    (fresh_gateway / "db-encrypt.key").chmod(0o600)
    with local_platform(PLATFORM, tmp_path / "second", operator_env=operator) as lp:
        again = lp.hub_api("GET", "/user", token)  # the token issued before is in the database
        assert again.status == 200 and again.json()["name"] == "alice"
        assert again.json()["created"] == me["created"]
        gateway = lp.gateway("alice", token)
        try:
            stopped = {report.name: report.status.name for report in gateway.list_clusters(status="STOPPED")}
        finally:
            gateway.close()
        assert stopped.get(name) == "STOPPED"
        # `platform usage` reads the ledger from PostgreSQL: alice's spend from before
        usage = json.loads(lp.platform("usage", str(lp.config_path), "--json", "--state", str(lp.state_dir)).stdout)
        assert [user["spent_usd"] > 0 for user in _users_in(usage) if user["name"] == "alice"] == [True]
        assert len(_rows(connect, "SELECT id FROM usage_intervals")) == 2
        assert not (lp.state_dir / "ledger.sqlite").exists()
        assert not _files_holding(tmp_path / "second", PASSWORD)
    shutil.rmtree(tmp_path / "first", ignore_errors=True)


def test_the_hubs_upgrade_db_runs_on_a_database_the_ledger_and_gateway_share(postgres_server):  # noqa: F811
    """The hub VM's unit starts JupyterHub with --upgrade-db: on a shared database it must
    stamp and later check only its own version table, whatever else is there."""
    import logging

    import sqlalchemy as sa
    from jupyterhub import dbutil, orm

    from deploy.ledger import open_engine

    url = postgres_server.fresh_database()
    open_engine(url).dispose()  # the ledger's tables (and version table) first
    log = logging.getLogger("test-upgrade-db")
    for _ in range(2):  # first boot, then a replaced hub's
        dbutil.upgrade_if_needed(url, log=log)
        orm.new_session_factory(url)().close()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
            assert conn.execute(sa.text("SELECT count(*) FROM graticule_ledger_version")).scalar() == 1
        assert {"users", "usage_intervals"} <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()

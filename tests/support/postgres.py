"""A real PostgreSQL server for tests: `initdb` + `pg_ctl` into a temporary directory.

`postgres_server` (session scope) starts one server on a free loopback port and stops it
by PID at the end, even when tests fail; `fresh_database()` gives each test its own
database. PostgreSQL refuses to run as root, so as root the server runs as the
`postgres` system user (via `runuser`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.procs import alive, free_port, kill_tree

SUPERUSER = "graticule"


@dataclass
class PostgresServer:
    port: int
    directory: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        """Create an empty database; return its SQLAlchemy URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_postgres_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


def _postmaster_pid(data: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((data / "postmaster.pid").read_text().splitlines()[0])
    return None


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    for tool in ("initdb", "pg_ctl"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not on PATH: PostgreSQL server binaries are required")
    directory = Path(tempfile.mkdtemp(prefix="graticule-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(directory, user.pw_uid, user.pw_gid)
    data = directory / "data"
    port = free_port()
    pid = None
    try:
        subprocess.run(
            _as_postgres_user(["initdb", "-D", str(data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--no-sync"]),
            check=True, capture_output=True, timeout=120,
        )
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            _as_postgres_user(["pg_ctl", "-D", str(data), "-o", options, "-l", str(directory / "log"), "-w", "start"]),
            check=True, capture_output=True, timeout=120,
        )
        pid = _postmaster_pid(data)
        yield PostgresServer(port, directory)
    finally:
        pid = pid or _postmaster_pid(data)
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGINT)  # "fast" shutdown: disconnects clients, then exits
            deadline = time.monotonic() + 15
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            kill_tree(pid)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server

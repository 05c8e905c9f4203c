"""Reading another program's database (JupyterHub's, dask-gateway's) as it is: never made.

SQLite makes an empty file for a URL whose file is missing, which would read as "nothing
in use"; here a missing file is an error, so a reader can tell "none" from "cannot know".
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa


@contextmanager
def connected(db_url: str, what: str) -> Iterator[sa.Connection]:
    """A connection to the database at `db_url` (`what` names it in the error when a SQLite
    file is missing), with SQLAlchemy's warnings silenced: the programs' column types do not
    declare cache_ok, and SQLAlchemy warns on each query."""
    url = sa.engine.make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).is_file():
        raise FileNotFoundError(f"no {what} at {url.database}")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection, warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.exc.SAWarning)
            yield connection
    finally:
        engine.dispose()

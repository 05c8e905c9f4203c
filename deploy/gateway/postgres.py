"""dask-gateway's tables, made valid on PostgreSQL (the operator's database, GRATICULE_DATABASE_URL).

Upstream declares them with SQLite in mind: the cluster token as BINARY(140) (no such type
on PostgreSQL), millisecond timestamps as INTEGER (32 bits there: they overflow), a flag
as INTEGER written as a Python bool (PostgreSQL refuses a boolean for an integer column).
Before the backend creates the tables, those columns get a PostgreSQL variant of their
type, in place; SQLite keeps exactly the schema it had.
"""

from __future__ import annotations

import sqlalchemy as sa
from dask_gateway_server.backends.db_base import clusters, workers

POSTGRESQL_TYPES: dict[tuple[sa.Table, str], sa.types.TypeEngine] = {
    (clusters, "token"): sa.LargeBinary(),
    (clusters, "start_time"): sa.BigInteger(),
    (clusters, "stop_time"): sa.BigInteger(),
    (workers, "start_time"): sa.BigInteger(),
    (workers, "stop_time"): sa.BigInteger(),
    (workers, "close_expected"): sa.Boolean(),
}


def adapt_tables() -> None:
    """Give each column above its PostgreSQL variant (idempotent)."""
    for (table, column), postgresql in POSTGRESQL_TYPES.items():
        declared = table.c[column].type
        if "postgresql" not in getattr(declared, "_variant_mapping", {}):
            table.c[column].type = declared.with_variant(postgresql, "postgresql")

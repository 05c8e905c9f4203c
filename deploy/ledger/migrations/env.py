"""Alembic environment: always run programmatically on a connection given by
`deploy.ledger.engine.migrate` (no alembic.ini, no URL here)."""

from __future__ import annotations

from alembic import context

from deploy.ledger.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=context.config.get_main_option("version_table"),
    render_as_batch=connection.dialect.name == "sqlite",
)
# The caller owns the transaction (it holds the migration lock); run inside it.
context.run_migrations()

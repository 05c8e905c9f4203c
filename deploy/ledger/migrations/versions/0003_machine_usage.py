"""Usage from machines: an interval knows the instance it pays for (VM backends).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_intervals") as batch:
        batch.add_column(sa.Column("machine_id", sa.String(64), nullable=True))
    # One open interval per instance: an adopted or re-launched job never pays twice.
    op.create_index(
        "uq_usage_open_machine", "usage_intervals", ["machine_id"], unique=True,
        sqlite_where=sa.text("ended_at IS NULL AND machine_id IS NOT NULL"),
        postgresql_where=sa.text("ended_at IS NULL AND machine_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_usage_open_machine", table_name="usage_intervals")
    with op.batch_alter_table("usage_intervals") as batch:
        batch.drop_column("machine_id")

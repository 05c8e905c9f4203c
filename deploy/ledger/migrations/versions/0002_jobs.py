"""Batch jobs: runs (one per slot of a job) and the scheduler's cursors.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("slot", sa.Double(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("next_attempt_at", sa.Double(), nullable=True),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("attempt_started_at", sa.Double(), nullable=True),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("driver", sa.Text(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("result_name", sa.String(256), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
    )
    op.create_index(
        "uq_job_slot", "job_runs", ["job", "slot"], unique=True,
        sqlite_where=sa.text("slot IS NOT NULL"), postgresql_where=sa.text("slot IS NOT NULL"),
    )
    op.create_index("ix_job_runs_owner", "job_runs", ["owner", "id"])
    op.create_index("ix_job_runs_status", "job_runs", ["status", "next_attempt_at"])
    op.create_table(
        "job_cursors",
        sa.Column("job", sa.String(128), primary_key=True),
        sa.Column("checked_through", sa.Double(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_cursors")
    op.drop_index("ix_job_runs_status", table_name="job_runs")
    op.drop_index("ix_job_runs_owner", table_name="job_runs")
    op.drop_index("uq_job_slot", table_name="job_runs")
    op.drop_table("job_runs")

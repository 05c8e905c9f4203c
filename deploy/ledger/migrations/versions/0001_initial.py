"""Usage intervals, budget periods, alerts sent.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "usage_intervals",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("budget", sa.String(128), nullable=False),
        sa.Column("cluster", sa.String(128), nullable=False),
        sa.Column("process", sa.String(128), nullable=False),
        sa.Column("profile", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("cores", sa.Double(), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("price_per_hour_usd", sa.Double(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("heartbeat_at", sa.Double(), nullable=False),
        sa.Column("end_reason", sa.String(512), nullable=True),
    )
    covering = ["started_at", "price_per_hour_usd"]
    op.create_index("ix_usage_budget_end", "usage_intervals", ["budget", "ended_at", *covering])
    op.create_index("ix_usage_end", "usage_intervals", ["ended_at", "budget", *covering])
    op.create_index(
        "ix_usage_open_budget",
        "usage_intervals",
        ["budget", "cores", "price_per_hour_usd", "cluster"],
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_index("ix_usage_cluster", "usage_intervals", ["cluster"])
    op.create_index(
        "uq_usage_open_process",
        "usage_intervals",
        ["cluster", "process"],
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_table(
        "budget_periods",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("budget", sa.String(128), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("starts_at", sa.Double(), nullable=False),
        sa.Column("ends_at", sa.Double(), nullable=False),
        sa.Column("limit_usd", sa.Double(), nullable=False),
        sa.Column("exhausted_at", sa.Double(), nullable=True),
        sa.UniqueConstraint("budget", "month", name="uq_budget_period"),
    )
    op.create_table(
        "alerts_sent",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("budget", sa.String(128), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("spent_usd", sa.Double(), nullable=False),
        sa.Column("limit_usd", sa.Double(), nullable=False),
        sa.Column("sent_at", sa.Double(), nullable=False),
        sa.Column("mailed", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("budget", "month", "threshold", name="uq_alert_once"),
    )


def downgrade() -> None:
    op.drop_table("alerts_sent")
    op.drop_table("budget_periods")
    op.drop_index("uq_usage_open_process", table_name="usage_intervals")
    op.drop_table("usage_intervals")

"""Delivery ledger: one row per extract and subscriber, updated on every attempt.

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
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("extract_run_id", sa.Integer, nullable=False),
        sa.Column("subscriber_uuid", sa.String(36), nullable=False),
        sa.Column("file_name", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("persons", sa.Integer, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("target", sa.String(800), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("delivered_at", sa.DateTime, nullable=True),
        sa.ForeignKeyConstraint(["extract_run_id"], ["extract_run.id"],
                                name="fk_delivery_extract_run_id_extract_run"),
        sa.PrimaryKeyConstraint("id", name="pk_delivery"),
        sa.UniqueConstraint("extract_run_id", "subscriber_uuid",
                            name="uq_delivery_extract_run_id_subscriber_uuid"),
    )

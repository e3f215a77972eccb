"""Operator console (issue 14): every examination of an inbound extract with its broken
rules and great-expectations results, rejected extracts included; the size of each
delivered data file in the ledger (the console's bytes-per-day plot).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "extract_check",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("checked_at", sa.DateTime, nullable=False),
        sa.Column("file_name", sa.String(100), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("task_number", sa.String(6), nullable=True),
        sa.Column("production_date", sa.Date, nullable=True),
        sa.Column("previous_date", sa.Date, nullable=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("persons", sa.Integer, nullable=True),
        sa.Column("records", sa.Integer, nullable=True),
        sa.Column("problems", sa.Text, nullable=False),
        sa.Column("expectations", sa.Text, nullable=False),
        sa.Column("quarantined_to", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_extract_check"),
    )
    op.create_index("ix_extract_check_checked_at", "extract_check", ["checked_at"])
    op.add_column("delivery", sa.Column("size_bytes", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as delivery:
        delivery.drop_column("size_bytes")
    op.drop_index("ix_extract_check_checked_at", "extract_check")
    op.drop_table("extract_check")

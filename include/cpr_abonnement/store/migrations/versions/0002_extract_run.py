"""Processed extracts: the filter snapshot instant and the production-date chain.

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


def upgrade() -> None:
    op.create_table(
        "extract_run",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("task_number", sa.String(6), nullable=False),
        sa.Column("production_date", sa.Date, nullable=False),
        sa.Column("previous_date", sa.Date, nullable=False),
        sa.Column("file_name", sa.String(100), nullable=False),
        sa.Column("extract_sha256", sa.String(64), nullable=False),
        sa.Column("persons", sa.Integer, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("first_processed_at", sa.DateTime, nullable=False),
        sa.Column("filters_as_of", sa.DateTime, nullable=False),
        sa.Column("delivered_at", sa.DateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_extract_run"),
        sa.UniqueConstraint("task_number", "production_date",
                            name="uq_extract_run_task_number_production_date"),
    )

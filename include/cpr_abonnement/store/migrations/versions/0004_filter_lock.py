"""Filter lock: serialises filter changes against choosing a snapshot instant.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lock = op.create_table(
        "filter_lock",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_filter_lock"),
    )
    op.bulk_insert(lock, [{"id": 1, "changed_at": None}])

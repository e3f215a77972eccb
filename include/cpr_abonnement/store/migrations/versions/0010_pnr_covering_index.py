"""The PNR lookup index carries the validity period (issue 16): the daily join finds the
filters in force for the extract's PNRs in the index alone, without reading a table row
per hit (200,000 hits among 20M rows a day at national scale).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEX = "ix_filter_pnr_pnr"


def upgrade() -> None:
    op.drop_index(INDEX, "filter_pnr")
    op.create_index(INDEX, "filter_pnr", ["pnr", "subscriber_id", "added_at", "removed_at"])


def downgrade() -> None:
    op.drop_index(INDEX, "filter_pnr")
    op.create_index(INDEX, "filter_pnr", ["pnr", "subscriber_id"])

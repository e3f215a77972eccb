"""Delivery settings with validity periods (issue 13): the delivery mode and target a
subscriber had at an instant, for the filter snapshot "as of" it.

Existing subscribers get one period from their registration with their present setting:
switches made before this revision are not known (the audit trail's ``SetDelivery`` rows
record them for a reader).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_setting",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("delivery_mode", sa.String(8), nullable=False),
        sa.Column("pickup_account", sa.String(64), nullable=True),
        sa.Column("sftp_conn_id", sa.String(250), nullable=True),
        sa.Column("remote_dir", sa.String(500), nullable=False),
        sa.Column("valid_from", sa.DateTime, nullable=False),
        sa.Column("valid_to", sa.DateTime, nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"],
                                name="fk_delivery_setting_subscriber_id_subscriber"),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_setting"),
    )
    op.create_index("ix_delivery_setting_subscriber_id", "delivery_setting",
                    ["subscriber_id", "valid_from"])
    op.execute(
        "INSERT INTO delivery_setting (subscriber_id, delivery_mode, pickup_account, "
        "sftp_conn_id, remote_dir, valid_from) SELECT id, delivery_mode, pickup_account, "
        "sftp_conn_id, remote_dir, created_at FROM subscriber")


def downgrade() -> None:
    op.drop_index("ix_delivery_setting_subscriber_id", "delivery_setting")
    op.drop_table("delivery_setting")

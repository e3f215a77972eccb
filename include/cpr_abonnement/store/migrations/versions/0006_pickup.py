"""Pick-up delivery (issue 13): delivery mode and pick-up account per subscriber, SSH
public keys per subscriber, and the ledger's pick-up tracking columns.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CURRENT = {"sqlite_where": sa.text("removed_at IS NULL"),
            "postgresql_where": sa.text("removed_at IS NULL")}
_TRACKING = ("available_at", "picked_up_at", "removed_at")


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild on SQLite: other tables reference subscriber).
    op.add_column("subscriber", sa.Column("delivery_mode", sa.String(8), nullable=False,
                                          server_default="push"))
    op.add_column("subscriber", sa.Column("pickup_account", sa.String(64), nullable=True))
    op.create_index("uq_subscriber_pickup_account", "subscriber", ["pickup_account"],
                    unique=True)
    op.create_table(
        "ssh_key",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("key_type", sa.String(40), nullable=False),
        sa.Column("key_data", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("bits", sa.Integer, nullable=False),
        sa.Column("comment", sa.String(200), nullable=False),
        sa.Column("added_at", sa.DateTime, nullable=False),
        sa.Column("removed_at", sa.DateTime, nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"],
                                name="fk_ssh_key_subscriber_id_subscriber"),
        sa.PrimaryKeyConstraint("id", name="pk_ssh_key"),
    )
    op.create_index("uq_ssh_key_current", "ssh_key", ["fingerprint"], unique=True,
                    **_CURRENT)
    op.create_index("ix_ssh_key_subscriber_id", "ssh_key", ["subscriber_id"])
    for column in _TRACKING:
        op.add_column("delivery", sa.Column(column, sa.DateTime, nullable=True))
    op.add_column("delivery", sa.Column("removed_by", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as delivery:
        for column in ("removed_by", *reversed(_TRACKING)):
            delivery.drop_column(column)
    op.drop_table("ssh_key")
    op.drop_index("uq_subscriber_pickup_account", "subscriber")
    with op.batch_alter_table("subscriber") as subscriber:
        subscriber.drop_column("pickup_account")
        subscriber.drop_column("delivery_mode")

"""Onboarding (issue 15): the registration document's further fields per subscriber,
and the end of the service window a push delivery waited for.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscriber", sa.Column("registration", sa.Text, nullable=True))
    op.add_column("delivery", sa.Column("window_wait_until", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as delivery:
        delivery.drop_column("window_wait_until")
    with op.batch_alter_table("subscriber") as subscriber:
        subscriber.drop_column("registration")

"""SF6002 over mutual TLS: the "no filter" subscription, certificates and service
agreements per IT system, and how each audited call came (transport, certificate,
CallersServiceCallIdentifier).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_CURRENT = {"sqlite_where": sa.text("removed_at IS NULL"),
            "postgresql_where": sa.text("removed_at IS NULL")}


def _per_subscriber(name: str, *columns: sa.Column) -> None:
    """A table of rows per subscriber with a validity period ``[added_at, removed_at)``."""
    op.create_table(
        name,
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        *columns,
        sa.Column("added_at", sa.DateTime, nullable=False),
        sa.Column("removed_at", sa.DateTime, nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"],
                                name=f"fk_{name}_subscriber_id_subscriber"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )


def upgrade() -> None:
    _per_subscriber("filter_none")
    op.create_index("uq_filter_none_current", "filter_none", ["subscriber_id"], unique=True,
                    **_CURRENT)
    _per_subscriber("certificate",
                    sa.Column("sha256", sa.String(64), nullable=False),
                    sa.Column("subject", sa.String(500), nullable=False),
                    sa.Column("not_after", sa.DateTime, nullable=False))
    op.create_index("uq_certificate_current", "certificate", ["sha256"], unique=True,
                    **_CURRENT)
    op.create_index("ix_certificate_subscriber_id", "certificate", ["subscriber_id"])
    _per_subscriber("service_agreement", sa.Column("uuid", sa.String(36), nullable=False))
    op.create_index("uq_service_agreement_current", "service_agreement", ["uuid"],
                    unique=True, **_CURRENT)
    op.create_index("ix_service_agreement_subscriber_id", "service_agreement",
                    ["subscriber_id"])
    op.add_column("audit", sa.Column("transport", sa.String(16), nullable=True))
    op.add_column("audit", sa.Column("certificate_sha256", sa.String(64), nullable=True))
    op.add_column("audit", sa.Column("call_id", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit") as audit:
        for column in ("call_id", "certificate_sha256", "transport"):
            audit.drop_column(column)
    for table in ("service_agreement", "certificate", "filter_none"):
        op.drop_table(table)

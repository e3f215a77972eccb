"""Initial filter database: subscribers, filters with validity periods, credentials, audit.

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


def _filter_table(name: str, *value_columns: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        *value_columns,
        sa.Column("added_at", sa.DateTime, nullable=False),
        sa.Column("removed_at", sa.DateTime, nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"],
                                name=f"fk_{name}_subscriber_id_subscriber"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )
    keys = [c.name for c in value_columns]
    op.create_index(f"uq_{name}_current", name, ["subscriber_id", *keys], unique=True,
                    sqlite_where=sa.text("removed_at IS NULL"),
                    postgresql_where=sa.text("removed_at IS NULL"))


def upgrade() -> None:
    op.create_table(
        "subscriber",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("serves", sa.String(200), nullable=True),
        sa.Column("sftp_conn_id", sa.String(250), nullable=True),
        sa.Column("remote_dir", sa.String(500), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("disabled_at", sa.DateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_subscriber"),
        sa.UniqueConstraint("uuid", name="uq_subscriber_uuid"),
    )
    _filter_table("filter_pnr", sa.Column("pnr", sa.BigInteger, nullable=False))
    op.create_index("ix_filter_pnr_pnr", "filter_pnr", ["pnr", "subscriber_id"])
    _filter_table("filter_age_range",
                  sa.Column("start_age", sa.SmallInteger, nullable=False),
                  sa.Column("end_age", sa.SmallInteger, nullable=False))
    _filter_table("filter_municipality", sa.Column("code", sa.String(4), nullable=False))
    op.create_index("ix_filter_municipality_code", "filter_municipality",
                    ["code", "subscriber_id"])
    _filter_table("filter_change_code", sa.Column("code", sa.String(3), nullable=False))
    op.create_index("ix_filter_change_code_code", "filter_change_code",
                    ["code", "subscriber_id"])
    op.create_table(
        "credential",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"],
                                name="fk_credential_subscriber_id_subscriber"),
        sa.PrimaryKeyConstraint("id", name="pk_credential"),
        sa.UniqueConstraint("token_id", name="uq_credential_token_id"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("caller", sa.String(200), nullable=False),
        sa.Column("subscriber_uuid", sa.String(36), nullable=True),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("arguments", sa.Text, nullable=False),
        sa.Column("result", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_subscriber_uuid", "audit", ["subscriber_uuid"])

"""The CPR replica and SF1520 person look-ups (issue 25): each person's current block,
the extracts applied to it, every look-up with the PNR as a keyed hash; a service per
service agreement (SF6002 subscriptions or SF1520 look-ups); whom a system's look-ups
may find (all persons, or those its subscriptions select).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscriber", sa.Column("lookup_scope", sa.String(16), nullable=False,
                                          server_default="all"))
    op.add_column("service_agreement", sa.Column("service", sa.String(16), nullable=False,
                                                 server_default="sf6002"))
    op.create_table(
        "replica_extract",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("file_name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("production_date", sa.Date, nullable=False),
        sa.Column("previous_date", sa.Date, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("persons", sa.Integer, nullable=False),
        sa.Column("written", sa.Integer, nullable=False),
        sa.Column("kept_newer", sa.Integer, nullable=False),
        sa.Column("applied_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_replica_extract"),
        sa.UniqueConstraint("sha256", name="uq_replica_extract_sha256"),
    )
    op.create_index("ix_replica_extract_production_date", "replica_extract",
                    ["production_date"])
    op.create_table(
        "replica_person",
        sa.Column("pnr", sa.String(10), nullable=False),
        sa.Column("current_pnr", sa.String(10), nullable=True),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("municipality", sa.SmallInteger, nullable=True),
        sa.Column("block", sa.LargeBinary, nullable=False),
        sa.Column("production_date", sa.Date, nullable=False),
        sa.Column("extract_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("pnr", name="pk_replica_person"),
        sa.ForeignKeyConstraint(["extract_id"], ["replica_extract.id"],
                                name="fk_replica_person_extract_id_replica_extract"),
    )
    op.create_index("ix_replica_person_current_pnr", "replica_person", ["current_pnr"])
    op.create_table(
        "replica_lookup",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("looked_up_at", sa.DateTime, nullable=False),
        sa.Column("system", sa.String(36), nullable=True),
        sa.Column("user_uuid", sa.String(36), nullable=True),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("pnr_hash", sa.String(64), nullable=False),
        sa.Column("result", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_replica_lookup"),
    )
    op.create_index("ix_replica_lookup_pnr_hash", "replica_lookup",
                    ["pnr_hash", "looked_up_at"])
    op.create_index("ix_replica_lookup_looked_up_at", "replica_lookup", ["looked_up_at"])


def downgrade() -> None:
    op.drop_table("replica_lookup")
    op.drop_table("replica_person")
    op.drop_table("replica_extract")
    with op.batch_alter_table("service_agreement") as agreements:
        agreements.drop_column("service")
    with op.batch_alter_table("subscriber") as subscriber:
        subscriber.drop_column("lookup_scope")

"""Schema: migrations build what the models describe; sql/ is current and builds it too."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from cpr_abonnement.filters import METADATA
from cpr_abonnement.store.db import current_revision, make_engine, schema_sql, upgrade

SQL = Path(__file__).parents[2] / "sql"


def _diff(engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return [d for d in compare_metadata(ctx, METADATA)
                if not (d[0] == "remove_table" and d[1].name == "alembic_version")]


def test_upgrade_is_idempotent_and_matches_the_models(engine):
    assert current_revision(engine) == "0011"
    assert upgrade(engine) == "0011"
    assert _diff(engine) == []


def test_partial_unique_index_allows_history(engine):
    indexes = {i["name"]: i for i in inspect(engine).get_indexes("filter_pnr")}
    assert indexes["uq_filter_pnr_current"]["unique"]
    assert indexes["ix_filter_pnr_pnr"]["column_names"] == ["pnr", "subscriber_id", "added_at",
                                                         "removed_at"]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_committed_sql_is_current(dialect):
    committed = (SQL / f"schema.{dialect}.sql").read_text()
    assert committed == schema_sql(dialect, METADATA), (
        f"sql/schema.{dialect}.sql is stale: run `cprsub db schema --dialect {dialect}`")


def test_sql_files_build_the_models_on_empty_databases(sqlite_url, fresh_postgres_url):
    for url, dialect in ((sqlite_url, "sqlite"), (fresh_postgres_url, "postgresql")):
        engine = make_engine(url) if dialect == "sqlite" else create_engine(url)
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for statement in (SQL / f"schema.{dialect}.sql").read_text().split(";"):
                body = "\n".join(ln for ln in statement.splitlines()
                                 if not ln.startswith("--")).strip()
                if body:
                    cur.execute(body)
            raw.commit()
        finally:
            raw.close()
        assert _diff(engine) == [], dialect
        engine.dispose()


def test_0005_upgrades_a_0004_database_in_place_keeping_its_audit(db_url):
    engine = make_engine(db_url)
    assert upgrade(engine, "0004") == "0004"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO audit (at, caller, subscriber_uuid, operation, arguments, result) "
            "VALUES ('2026-11-25 12:00:00', 'cli:ops', NULL, 'AddSubscriber', '{}', 'ADDED')")
    assert upgrade(engine) == "0011"
    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT operation, transport, certificate_sha256, call_id FROM audit").one()
    assert tuple(row) == ("AddSubscriber", None, None, None)
    assert _diff(engine) == []
    engine.dispose()

"""Backups (issue 22, item 8), end to end: the daily DAG on a PostgreSQL filter
database, ``cprsub db backup``, the database lost, ``cprsub db restore`` into a new one,
and the same day delivered again from the restored database, byte for byte."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from cpr_abonnement.filters import METADATA
from cpr_abonnement.records import extract_runs, ledger
from cpr_abonnement.store.db import make_engine
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.deployment import SUBSCRIBERS, task_states

DAY = dt.date(2026, 11, 19)
AALBORG, ODENSE, VEJLE = SUBSCRIBERS
CPRSUB = str(Path(sys.executable).parent / "cprsub")


@pytest.fixture
def filter_db_url(fresh_postgres_url):
    """This module's deployment keeps its filter database on PostgreSQL, as production."""
    return fresh_postgres_url


def cprsub(*args: str) -> subprocess.CompletedProcess:
    """The installed command line, as an operator runs it."""
    return subprocess.run([CPRSUB, *args], capture_output=True, text=True, timeout=300)


def drop_database(postgres_url: str, url: str) -> None:
    """The filter database is lost (its connections with it)."""
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE {make_url(url).database} WITH (FORCE)"))
    engine.dispose()


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def history(engine) -> dict[str, object]:
    """What the filter database must give back: the subscribers, every filter row with
    its validity period (read as rows: GetAllFilters would add to the audit trail), the
    audit trail, the ledger and the extract's run with its snapshot instant."""
    svc = SubscriptionService(engine, caller="test")
    run = extract_runs.last_processed(engine, "431101", DAY + dt.timedelta(days=1))
    with engine.connect() as conn:
        filter_rows = {t.name: conn.execute(select(t).order_by(*t.primary_key)).all()
                       for t in METADATA.sorted_tables if t.name.startswith("filter_")}
    return {
        "subscribers": [(s.uuid, s.name, s.active) for s in svc.subscribers()],
        "filters": filter_rows,
        "audit": [(a.at, a.caller, a.operation, a.subscriber_uuid, a.arguments, a.result)
                  for a in svc.audit_trail()],
        "ledger": ledger.entries(engine, "431101", DAY),
        "run": (run.file_name, run.first_processed_at, run.filters_as_of, run.delivered_at),
    }


def test_a_day_redelivered_from_a_restored_backup_is_byte_identical(
        deployment, postgres_url, filter_db_url, new_postgres_database, tmp_path, monkeypatch):
    src = deployment.extract(DAY)
    original = src.read_bytes()  # the processed extract leaves the inbound folder
    first = deployment.run(DAY)
    assert first.state == "success", task_states(first)
    sent = {uuid: digests(deployment.delivered(uuid)) for uuid in SUBSCRIBERS}
    assert all(set(files) == {src.name, f"{src.name}.metadata"} for files in sent.values())
    assert deployment.delivered(AALBORG)[src.name].count(b"\n") > 2  # persons, not 000+999

    # After the day, filters change: a re-delivery of the day must not see that (the
    # snapshot of DAY lives in the database, with each filter's validity period).
    svc = SubscriptionService(deployment.engine, caller="test")
    svc.remove_municipality(AALBORG, "851")
    svc.remove_change_code(ODENSE, "A21")
    before = history(deployment.engine)

    backups = tmp_path / "backups"
    made = cprsub("db", "backup", "--db", filter_db_url, "--out", str(backups), "--keep", "3")
    assert made.returncode == 0, made.stderr
    (dump,) = backups.glob("*.dump")
    assert "BACKED UP" in made.stdout and str(dump) in made.stdout

    # The filter database is lost, and the staged files and deliveries with it; the
    # extract comes back from CPR (or the inbound volume's backup) into the inbound folder.
    deployment.engine.dispose()
    drop_database(postgres_url, filter_db_url)
    for folder in (deployment.staging, deployment.sftp_root):
        shutil.rmtree(folder)
        folder.mkdir()
    src.write_bytes(original)

    restored_url = new_postgres_database()
    back = cprsub("db", "restore", str(dump), "--db", restored_url)
    assert back.returncode == 0, back.stderr
    assert "match its manifest" in back.stdout
    restored = make_engine(restored_url)
    try:
        assert history(restored) == before

        monkeypatch.setenv("CPRSUB_DB_URL", restored_url)
        again = deployment.run(DAY)
        assert again.state == "success", task_states(again)
        assert {uuid: digests(deployment.delivered(uuid)) for uuid in SUBSCRIBERS} == sent
        rows = ledger.entries(restored, "431101", DAY)
        assert {(e.outcome, e.attempts) for e in rows} == {("DELIVERED", 2)}  # counted on
    finally:
        restored.dispose()

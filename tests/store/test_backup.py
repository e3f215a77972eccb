"""``cprsub db backup`` and ``cprsub db restore`` (issue 22, item 8): a restore gives
back every row and refuses what it must (a database that is not empty, a damaged
backup, one from a newer release); ``--keep`` prunes; a backup is owner-only and is
the snapshot its manifest describes, however busy the database is meanwhile.
(End to end with the daily DAG: tests/system/test_backup_restore.py.)"""

from __future__ import annotations

import hashlib
import json
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text

from cpr_abonnement.cli import main
from cpr_abonnement.filters import METADATA
from cpr_abonnement.store.db import head_revision, make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService

A = "aaaaaaaa-0000-4000-8000-000000000001"


@pytest.fixture
def cprsub(capsys):
    """The command line in this process: (exit code, stdout, stderr) per call."""
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


@pytest.fixture
def empty_target(request, db_url, tmp_path):
    """A new, empty database of the same kind as ``db_url`` to restore into."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restored.db'}"
    return request.getfixturevalue("new_postgres_database")()


def populate(url: str, revision: str = "head") -> None:
    """A subscriber with filters (one removed since: history), hence audit rows."""
    engine = make_engine(url)
    upgrade(engine, revision)
    if revision == "head":
        svc = SubscriptionService(engine, caller="test")
        svc.add_subscriber(A, "Aalborg ESDH")
        svc.add_pnrs(A, ["0101901234", "1502504321"])
        svc.add_municipality(A, "851")
        svc.remove_municipality(A, "851")
    engine.dispose()


def take_backup(cprsub, url: str, out: Path, *extra: str) -> Path:
    """Run ``cprsub db backup``; the backup file it wrote."""
    before = set(out.iterdir()) if out.exists() else set()
    code, stdout, err = cprsub("db", "backup", "--db", url, "--out", str(out), *extra)
    assert code == 0, err
    (made,) = [p for p in set(out.iterdir()) - before if not p.name.endswith(".json")]
    assert f"to {made} (" in stdout
    return made


def contents(url: str) -> dict[str, list]:
    """Every row of every table of the schema."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = {t.name: conn.execute(select(t).order_by(*t.primary_key)).all()
                for t in METADATA.sorted_tables}
    engine.dispose()
    return rows


def tables(url: str) -> list[str]:
    engine = create_engine(url)
    names = sorted(inspect(engine).get_table_names())
    engine.dispose()
    return names


def test_a_restore_gives_back_every_row_and_the_backup_is_owner_only(db_url, empty_target,
                                                                    cprsub, tmp_path):
    populate(db_url)
    dump = take_backup(cprsub, db_url, tmp_path / "backups")
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600  # it holds CPR numbers
    manifest_path = dump.parent / (dump.name.removesuffix(dump.suffix) + ".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert stat.S_IMODE(manifest_path.stat().st_mode) == 0o600
    assert manifest["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert manifest["size_bytes"] == dump.stat().st_size
    assert manifest["alembic_revision"] == head_revision()
    assert manifest["rows"]["filter_pnr"] == 2 and manifest["rows"]["subscriber"] == 1

    code, out, err = cprsub("db", "restore", str(dump), "--db", empty_target)
    assert code == 0, err
    assert "match its manifest" in out and err == ""
    assert contents(empty_target) == contents(db_url)


def test_restore_refuses_a_database_that_is_not_empty(db_url, empty_target, cprsub,
                                                      tmp_path):
    populate(db_url)
    dump = take_backup(cprsub, db_url, tmp_path / "backups")
    stray = create_engine(empty_target)
    with stray.begin() as conn:
        conn.execute(text("CREATE TABLE notes (line TEXT)"))
        conn.execute(text("INSERT INTO notes VALUES ('kept')"))
    stray.dispose()

    code, _, err = cprsub("db", "restore", str(dump), "--db", empty_target)
    assert code == 1
    assert "refusing to restore" in err and "not empty" in err and "notes" in err
    assert tables(empty_target) == ["notes"]  # nothing restored beside it


def test_keep_prunes_all_but_the_newest_backups_of_that_database(db_url, cprsub, tmp_path):
    populate(db_url)
    out = tmp_path / "backups"
    out.mkdir()
    others = {"other-20200101T000000.000Z.dump", "other-20200101T000000.000Z.manifest.json",
              "notes.txt"}  # another database's backup, and not a backup at all
    for name in others:
        (out / name).write_text("x")
    made = [take_backup(cprsub, db_url, out, "--keep", "2") for _ in range(4)]

    def with_manifest(p: Path) -> set[str]:
        return {p.name, p.name.removesuffix(p.suffix) + ".manifest.json"}

    assert {p.name for p in out.iterdir()} == with_manifest(made[2]) | with_manifest(
        made[3]) | others


def test_restore_refuses_a_damaged_backup(cprsub, sqlite_url, tmp_path):
    populate(sqlite_url)
    dump = take_backup(cprsub, sqlite_url, tmp_path / "backups")
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped on the way
    dump.write_bytes(bytes(data))
    target = tmp_path / "restored.db"

    code, _, err = cprsub("db", "restore", str(dump), "--db", f"sqlite:///{target}")
    assert code == 1
    assert "not the backup its manifest describes" in err
    assert not target.exists()


def test_restore_refuses_a_backup_from_a_newer_release(db_url, empty_target, cprsub,
                                                        tmp_path):
    populate(db_url)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    dump = take_backup(cprsub, db_url, tmp_path / "backups")

    code, _, err = cprsub("db", "restore", str(dump), "--db", empty_target)
    assert code == 1
    assert "'9999_future', which this release does not know" in err
    assert tables(empty_target) == []


def test_restoring_an_older_revision_says_to_upgrade(cprsub, sqlite_url, tmp_path):
    populate(sqlite_url, revision="0009")
    dump = take_backup(cprsub, sqlite_url, tmp_path / "backups")
    target = f"sqlite:///{tmp_path / 'restored.db'}"

    code, out, err = cprsub("db", "restore", str(dump), "--db", target)
    assert code == 0, err
    assert "at revision 0009" in out
    assert f"this release is at schema revision {head_revision()}: run `cprsub db upgrade" in err


def test_the_manifest_describes_the_dumped_snapshot_while_writes_go_on(
        fresh_postgres_url, new_postgres_database, cprsub, tmp_path):
    """The manifest's row counts are read in the snapshot pg_dump dumps, not before or
    after it: with a writer adding audit rows all along, the restore's check against
    the manifest still holds, and the rows written after the snapshot are not in it."""
    populate(fresh_postgres_url)
    stop = threading.Event()
    written = threading.Event()

    def writer() -> None:
        engine = create_engine(fresh_postgres_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            while not stop.is_set():
                conn.execute(text(
                    "INSERT INTO audit (at, caller, operation, arguments, result) "
                    "VALUES (now(), 'writer', 'Write', '{}', 'OK')"))
                written.set()
        engine.dispose()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert written.wait(10)
        dump = take_backup(cprsub, fresh_postgres_url, tmp_path / "backups")
    finally:
        stop.set()
        thread.join()
    target = new_postgres_database()

    code, out, err = cprsub("db", "restore", str(dump), "--db", target)
    assert code == 0, err
    assert "match its manifest" in out  # row counts included
    restored, source = (len(contents(url)["audit"]) for url in (target, fresh_postgres_url))
    assert restored < source  # the writer went on after the snapshot

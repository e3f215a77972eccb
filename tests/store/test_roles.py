"""The filter database's roles on a real PostgreSQL server (issue 22, item 4).

Each role runs the real code that uses it in production (the key look-up, the
subscription service, the pipeline's records, the pick-up tracker) and is refused
everything else it was never meant to do. Without the grants every "works" test here
fails with permission denied, and the "refused" tests fail once a role holds too much.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from cpr_abonnement.cli import main
from cpr_abonnement.filters import METADATA
from cpr_abonnement.store.db import make_engine
from cpr_abonnement.store.roles import ROLES, grants_sql
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.roles import as_role, owned_database, upgrade_with_roles
from support.sshkeys import ed25519_line

PICKUP_UUID = "dddddddd-0000-4000-8000-00000000000d"
PUSH_UUID = "eeeeeeee-0000-4000-8000-00000000000e"
ACCOUNT = "herning-sag"
PNR = "0101901234"  # synthetic; shown only masked


#: Synthetic passwords, as .env would give them (the test server trusts local logins,
#: so they are stored, not checked: the catalogue test below checks how).
PASSWORDS = {suffix: f"synthetic-{suffix}-password-0001" for suffix in
             ("api", "worker", "keys", "pickup")}


@pytest.fixture
def owner_url(postgres_url, monkeypatch) -> str:
    """A filter database owned by cprsub, upgraded with --grant-roles as production's
    airflow-init does (every role given its password)."""
    url = owned_database(postgres_url)
    assert upgrade_with_roles(url, monkeypatch, **PASSWORDS) == 0
    return url


@pytest.fixture
def seeded(owner_url) -> dict[str, str]:
    """Two subscribers (one pick-up with a key, one push with a PNR filter and a
    contact person), set up as the owner; the URL of each role."""
    owner = make_engine(owner_url)
    svc = SubscriptionService(owner, caller="test")
    svc.add_subscriber(PICKUP_UUID, "Herning Sag", delivery_mode="pickup",
                       pickup_account=ACCOUNT, ssh_keys=[ed25519_line("herning")])
    svc.add_subscriber(PUSH_UUID, "Vejle ESDH", sftp_conn_id="sftp_vejle", remote_dir="/in")
    svc.add_pnr(PUSH_UUID, PNR)
    owner.dispose()
    return {role: as_role(owner_url, role) for role in (*ROLES, "cprsub")}


def _refused(url: str, *statements: str) -> None:
    """Each statement fails with permission denied (or must be owner) for that role."""
    engine = create_engine(url)
    try:
        for sql in statements:
            with engine.begin() as conn, pytest.raises(ProgrammingError) as caught:
                conn.exec_driver_sql(sql)
            assert re.search(r"permission denied|must be (the )?owner", str(caught.value)), sql
    finally:
        engine.dispose()


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# --- cprsub_keys: sshd's AuthorizedKeysCommand -------------------------------------

def test_the_key_look_up_runs_as_cprsub_keys(seeded, capsys):
    code, out, err = _cli(capsys, "pickup", "authorized-keys", "--db", seeded["cprsub_keys"],
                          ACCOUNT)
    assert (code, err) == (0, "")
    assert out.startswith("ssh-ed25519 ") and out.rstrip().endswith("herning")
    assert _cli(capsys, "pickup", "authorized-keys", "--db", seeded["cprsub_keys"],
                "nobody-here")[:2] == (0, "")


def test_the_key_look_up_role_cannot_write_nor_read_pnrs_or_contacts(seeded):
    _refused(seeded["cprsub_keys"],
             "INSERT INTO ssh_key (subscriber_id, key_type, key_data, fingerprint, bits, "
             "comment, added_at) VALUES (1, 'ssh-ed25519', 'AAAA', 'SHA256:x', 256, '', now())",
             "UPDATE ssh_key SET removed_at = now()",
             "DELETE FROM ssh_key",
             "UPDATE subscriber SET active = true",
             "DELETE FROM subscriber",
             "SELECT pnr FROM filter_pnr",
             "SELECT registration FROM subscriber",
             "SELECT token_hash FROM credential",
             "SELECT * FROM audit",
             "SELECT * FROM delivery",
             "CREATE TABLE stolen (x int)")


# --- cprsub_api: the subscription API, console and the operator's commands ---------

def test_the_subscription_service_runs_as_cprsub_api(seeded):
    api = make_engine(seeded["cprsub_api"])
    svc = SubscriptionService(api, caller="soap:test")
    uuid = "ffffffff-0000-4000-8000-00000000000f"
    svc.add_subscriber(uuid, "Aarhus Sag", sftp_conn_id="sftp_aarhus", remote_dir="/in")
    assert svc.add_pnr(uuid, PNR).result == "ADDED"
    assert svc.add_pnrs(uuid, ["0202902345", "0303903456"]).counts == {"ADDED": 2}
    svc.add_municipality(uuid, "851")
    assert svc.remove_pnr(uuid, "0202902345").result == "REMOVED"
    filters = svc.get_all_filters(uuid)
    assert sorted(str(p) for p in filters.pnrs) == ["0101901234", "0303903456"]
    svc.set_delivery(uuid, "pickup", pickup_account="aarhus-sag")
    svc.add_ssh_key(uuid, ed25519_line("aarhus"))
    svc.add_service_agreement(uuid, "12345678-0000-4000-8000-000000000abc")
    svc.set_active(uuid, False)
    assert [e.operation for e in svc.audit_trail(uuid)][:1]  # the console reads it back
    api.dispose()


def test_api_tokens_are_issued_and_revoked_as_cprsub_api(seeded):
    from cpr_abonnement.identities import credentials

    api = make_engine(seeded["cprsub_api"])
    token = credentials.issue(api, role=credentials.Role.SUBSCRIBER, label="test",
                              subscriber_uuid=PUSH_UUID)
    assert credentials.authenticate(api, token) is not None
    assert credentials.revoke(api, token.split("_")[1])
    api.dispose()


def test_the_api_role_cannot_drop_alter_or_rewrite_the_audit_trail(seeded):
    _refused(seeded["cprsub_api"],
             "DROP TABLE filter_pnr",
             "ALTER TABLE subscriber ADD COLUMN x int",
             "TRUNCATE filter_pnr",
             "DELETE FROM filter_pnr",
             "DELETE FROM subscriber",
             "UPDATE audit SET result = 'OK'",
             "DELETE FROM audit",
             "TRUNCATE audit",
             "UPDATE delivery SET outcome = 'DELIVERED'",
             "INSERT INTO extract_run (task_number) VALUES ('431101')",
             "CREATE TABLE stolen (x int)",
             "DROP TABLE alembic_version")


# --- cprsub_worker: the Airflow tasks ----------------------------------------------

def test_the_pipelines_records_are_written_as_cprsub_worker(seeded):
    from cpr_abonnement.filters.snapshot import load_snapshot
    from cpr_abonnement.records import extract_checks, extract_runs, ledger
    from cpr_abonnement.records.extract_checks import CheckRecord

    worker = make_engine(seeded["cprsub_worker"])
    day = dt.date(2026, 11, 26)
    run = extract_runs.register(worker, task_number="431101", production_date=day,
                                previous_date=day - dt.timedelta(days=1),
                                file_name="D261126.L431101", sha256="a" * 64, persons=3,
                                records=9)
    snapshot = load_snapshot(worker, run.filters_as_of, np.array([int(PNR), 202902345],
                                                                 dtype=np.int64))
    assert PUSH_UUID in {s.uuid for s in snapshot.subscribers}
    attempt = dict(task_number="431101", production_date=day, subscriber_uuid=PICKUP_UUID,
                   file_name="D261126.L431101.pickup", sha256="b" * 64, persons=1,
                   records=3, target=f"pickup:{ACCOUNT}")
    now = dt.datetime(2026, 11, 26, 20, 0)
    ledger.start_delivery(worker, now=now, **attempt)
    done = ledger.finish_delivery(worker, outcome="DELIVERED", detail="placed", now=now,
                                  size_bytes=100, **attempt)
    assert done.delivered_at == now
    extract_checks.record(worker, CheckRecord(
        checked_at=now, file_name="D261126.L431101", verdict=extract_checks.ACCEPTED,
        task_number="431101", production_date=day, previous_date=day, size_bytes=1,
        persons=3, records=9))
    extract_runs.mark_delivered(worker, "431101", day, now)
    worker.dispose()


def test_the_worker_role_cannot_change_subscribers_filters_or_read_tokens(seeded):
    _refused(seeded["cprsub_worker"],
             "UPDATE subscriber SET active = false",
             "INSERT INTO filter_pnr (subscriber_id, pnr, added_at) VALUES (1, 101901234, now())",
             "UPDATE filter_pnr SET removed_at = now()",
             "DELETE FROM filter_pnr",
             "INSERT INTO ssh_key (subscriber_id) VALUES (1)",
             "SELECT token_hash FROM credential",
             "SELECT key_data FROM ssh_key",
             "DELETE FROM delivery",
             "UPDATE audit SET result = 'x'",
             "DELETE FROM audit",
             "DROP TABLE delivery",
             "CREATE TABLE stolen (x int)")


def test_the_replica_is_kept_as_cprsub_worker_and_looked_up_as_cprsub_api(seeded, tmp_path):
    """The workers apply extracts to the replica and remove old log rows; the API reads
    the replica and appends to the look-up log, nothing more."""
    from cpr_abonnement.extract.generator import generate
    from cpr_abonnement.lifecycle import forget_lookups
    from cpr_abonnement.replica.lookups import Caller, look_up
    from cpr_abonnement.replica.state import STATUS
    from cpr_abonnement.replica.updating import apply_extract

    path = tmp_path / "D261116.L431101"
    with open(path, "wb") as fh:
        generate(fh, production_date=dt.date(2026, 11, 16), persons=20, kind="status")
    worker, api = (make_engine(seeded[r]) for r in ("cprsub_worker", "cprsub_api"))
    assert apply_extract(worker, path, kind=STATUS).written == 20
    with worker.connect() as conn:
        pnr = conn.exec_driver_sql("SELECT pnr FROM replica_person LIMIT 1").scalar()
    at = dt.datetime(2026, 11, 20, 9)
    assert look_up(api, pnr, Caller(PUSH_UUID, None, "soap"), key="k",
                   now=lambda: at).person.pnr == pnr
    assert forget_lookups(worker, at + dt.timedelta(seconds=1), caller="test", now=at,
                         rule="test") == 1
    worker.dispose()
    api.dispose()
    _refused(seeded["cprsub_api"],
             "UPDATE replica_person SET status = 90",
             "DELETE FROM replica_person",
             "INSERT INTO replica_extract (file_name) VALUES ('x')",
             "DELETE FROM replica_lookup",
             "UPDATE replica_lookup SET result = 'x'")
    _refused(seeded["cprsub_worker"],
             "UPDATE replica_lookup SET result = 'x'",
             "INSERT INTO replica_lookup (transport) VALUES ('x')")
    _refused(seeded["cprsub_keys"], "SELECT block FROM replica_person",
             "SELECT pnr_hash FROM replica_lookup")


# --- cprsub_pickup: the pick-up tracker ---------------------------------------------

def test_the_pickup_tracker_runs_as_cprsub_pickup(seeded):
    from cpr_abonnement.pickup.log import ledger_recorder
    from cpr_abonnement.pickup.unix import active_accounts
    from cpr_abonnement.records import extract_runs, ledger

    owner = make_engine(seeded["cprsub"])
    day = dt.date(2026, 11, 26)
    extract_runs.register(owner, task_number="431101", production_date=day,
                          previous_date=day - dt.timedelta(days=1), file_name="D261126.L431101",
                          sha256="a" * 64, persons=3, records=9)
    ledger.record_delivery(owner, outcome="DELIVERED", detail="placed",
                           now=dt.datetime(2026, 11, 26, 20), task_number="431101",
                           production_date=day, subscriber_uuid=PICKUP_UUID,
                           file_name="D261126.L431101.x", sha256="b" * 64, persons=1,
                           records=3, target=f"pickup:{ACCOUNT}")
    tracker = make_engine(seeded["cprsub_pickup"])
    assert active_accounts(tracker) == [ACCOUNT]
    record = ledger_recorder(tracker)
    at = dt.datetime(2026, 11, 27, 8, tzinfo=dt.UTC)
    assert record(ACCOUNT, "IN/D261126.L431101.x", "downloaded", at)
    assert record(ACCOUNT, "IN/D261126.L431101.x", "removed", at)
    row = ledger.entry(owner, "431101", day, PICKUP_UUID)
    assert row is not None and row.picked_up_at == at.replace(tzinfo=None)
    assert row.removed_by == "subscriber" and row.outcome == "DELIVERED"
    owner.dispose()
    tracker.dispose()


def test_the_pickup_role_touches_only_the_pickup_columns(seeded):
    _refused(seeded["cprsub_pickup"],
             "UPDATE delivery SET outcome = 'DELIVERED'",
             "UPDATE delivery SET sha256 = 'x'",
             "DELETE FROM delivery",
             "INSERT INTO delivery (subscriber_uuid) VALUES ('x')",
             "SELECT detail FROM delivery",
             "SELECT pnr FROM filter_pnr",
             "SELECT registration FROM subscriber",
             "SELECT key_data FROM ssh_key",
             "UPDATE subscriber SET active = true")


# --- the grants themselves -----------------------------------------------------------

_PRIVILEGES = """
SELECT c.relname, a.grantee::regrole::text, a.privilege_type, NULL
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relnamespace = 'public'::regnamespace AND a.grantee <> c.relowner
UNION ALL
SELECT c.relname, a.grantee::regrole::text, a.privilege_type, att.attname
  FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid, aclexplode(att.attacl) a
 WHERE c.relnamespace = 'public'::regnamespace
ORDER BY 1, 2, 3, 4
"""


def _privileges(url: str) -> list[tuple]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(_PRIVILEGES))]
    engine.dispose()
    return rows


def test_re_running_the_grants_is_idempotent_and_takes_back_what_the_file_does_not_give(
        owner_url, monkeypatch):
    before = _privileges(owner_url)
    assert ("audit", "cprsub_api", "INSERT", None) in before
    assert not [r for r in before if r[1] == "cprsub_api" and r[0] == "audit"
                and r[2] in ("UPDATE", "DELETE")]
    owner = create_engine(owner_url)
    with owner.begin() as conn:  # a right granted by hand, which the file does not give
        conn.exec_driver_sql("GRANT DELETE ON audit TO cprsub_api")
    owner.dispose()
    assert upgrade_with_roles(owner_url, monkeypatch, **PASSWORDS) == 0
    assert upgrade_with_roles(owner_url, monkeypatch) == 0  # passwords kept, see below
    assert _privileges(owner_url) == before


def test_a_filter_table_a_later_migration_adds_gets_its_grants(owner_url, monkeypatch):
    """As a new filter type's migration would: its table, created by the owner, is
    writable by the API and readable by the workers once the upgrade re-applies the
    grants, and never by the key look-up or the tracker."""
    owner = create_engine(owner_url)
    with owner.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE filter_road (id SERIAL PRIMARY KEY, "
                             "subscriber_id int, road text, added_at timestamp, "
                             "removed_at timestamp)")
    owner.dispose()
    insert = "INSERT INTO filter_road (subscriber_id, road, added_at) VALUES (1, 'x', now())"
    _refused(as_role(owner_url, "cprsub_api"), insert)
    assert upgrade_with_roles(owner_url, monkeypatch, **PASSWORDS) == 0
    api = create_engine(as_role(owner_url, "cprsub_api"))
    with api.begin() as conn:
        conn.exec_driver_sql(insert)
    api.dispose()
    worker = create_engine(as_role(owner_url, "cprsub_worker"))
    with worker.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM filter_road").scalar() == 1
    worker.dispose()
    _refused(as_role(owner_url, "cprsub_worker"), insert)
    _refused(as_role(owner_url, "cprsub_keys"), "SELECT road FROM filter_road")
    _refused(as_role(owner_url, "cprsub_pickup"), "SELECT road FROM filter_road")


def test_every_table_of_the_schema_is_named_by_the_grants():
    """A migration adding a table that is no filter type's must say in the grants file
    who may use it: otherwise nobody may (fail closed), and this test says so."""
    sql = grants_sql()
    named = set(re.findall(r"\b([a-z_]+)\b", sql))
    missing = [t for t in METADATA.tables
               if t not in named and not (t.startswith("filter_") and t != "filter_lock")]
    assert missing == []


def _logins(admin_url: str) -> dict[str, tuple[bool, str]]:
    admin = create_engine(admin_url)
    with admin.connect() as conn:
        rows = {name: (login, verifier) for name, login, verifier in conn.execute(text(
            "SELECT rolname, rolcanlogin, coalesce(rolpassword, '') FROM pg_authid "
            "WHERE rolname LIKE 'cprsub\\_%'"))}
    admin.dispose()
    return rows


def test_roles_without_a_password_are_made_nologin_and_later_given_one(monkeypatch, capsys):
    """On a server of its own (roles belong to the whole server): no variable, no
    login; a password given later turns it on; a run without it leaves it alone."""
    from support.servers import postgres_server

    with postgres_server() as admin_url:
        url = owned_database(admin_url)
        assert upgrade_with_roles(url, monkeypatch) == 0
        assert "cprsub_keys: created NOLOGIN" in capsys.readouterr().out
        assert {r: login for r, (login, _) in _logins(admin_url).items()} == dict.fromkeys(
            ROLES, False)
        secret = PASSWORDS["keys"]
        assert upgrade_with_roles(url, monkeypatch, keys=secret) == 0
        out = capsys.readouterr().out
        assert "cprsub_keys: password set" in out and secret not in out
        login, verifier = _logins(admin_url)["cprsub_keys"]
        assert login and verifier.startswith("SCRAM-SHA-256$4096:") and secret not in verifier
        assert upgrade_with_roles(url, monkeypatch) == 0
        assert "cprsub_keys: unchanged" in capsys.readouterr().out
        assert _logins(admin_url)["cprsub_keys"] == (login, verifier)


def test_a_password_unfit_for_a_url_is_refused_without_repeating_it(
        owner_url, monkeypatch, capsys):
    bad = "short@pw"
    assert upgrade_with_roles(owner_url, monkeypatch, keys=bad) == 1
    err = capsys.readouterr().err
    assert "cprsub_keys" in err and bad not in err


def test_sqlite_says_grant_roles_does_not_apply_and_migrates_nothing(tmp_path, capsys):
    db = tmp_path / "filters.db"
    code, _, err = _cli(capsys, "db", "upgrade", "--db", f"sqlite:///{db}", "--grant-roles")
    assert code == 1
    assert "PostgreSQL only" in err and "nothing was migrated" in err
    assert not db.exists() or db.stat().st_size == 0


def test_the_grants_file_ships_in_the_package():
    import cpr_abonnement.store as store

    assert (Path(store.__file__).parent / "grants.postgresql.sql").read_text() == grants_sql()


def test_a_backup_of_a_granted_database_restores_on_a_server_without_the_roles(
        owner_url, tmp_path):
    """The dump carries GRANTs to the roles; a restore on a new server (no roles yet)
    leaves them out, and --grant-roles gives them back from the package's file."""
    from cpr_abonnement.store.backup import backup, restore
    from support.servers import postgres_server

    done = backup(owner_url, tmp_path)
    with postgres_server() as other:
        admin = create_engine(other, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE restored")
        admin.dispose()
        restored = restore(done.path, other.rsplit("/", 1)[0] + "/restored")
        assert restored.revision

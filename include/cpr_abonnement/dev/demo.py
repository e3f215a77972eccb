"""README command 1: the daily pipeline end to end on one machine's embedded defaults.

Sets up, under ``var/demo/`` (kept between runs):

* an Airflow home with a SQLite metadata database (``airflow db migrate``), using this
  repository's ``dags/`` and ``plugins/``;
* the filter database with seven demo subscribers and their filters: six pushed to over
  SFTP and one that picks up (account ``demo-pickup``, an ed25519 key generated into
  ``pickup-key`` / ``pickup-key.pub``; its files land in ``pickup/demo-pickup/IN/``);
* a synthetic change extract for the latest CPR delivery day in the inbound folder;
* an embedded SFTP server (asyncssh, pinned Ed25519 host key) with a folder per
  subscriber, and an Airflow connection per subscriber, stored in Airflow's metadata
  database (Admin → Connections in the UI, editable there) for the UI's SFTP server on
  port 2222; this command's own run overrides them with environment variables for its
  server on a free port (Airflow reads environment variables first);
* a mail sink (:mod:`cpr_abonnement.dev.mailsink`): failure alerts land as ``.eml`` files in
  ``var/demo/mail/`` (this command runs one while the DAG runs; the UI setup runs it
  in a terminal of its own on port 2525);

then runs the real DAG ``cpr_abonnement_daily`` for that day with ``dag.test()`` and
prints what each subscriber received. Then it starts the embedded pick-up SFTP server
(keys from the filter database, pinned host key ``pickup-host-key``) on a free port and
logs in as ``demo-pickup`` with ``pickup-key`` (paramiko), listing ``IN/`` as proof that
a subscriber can fetch its files. Run it again: the second run delivers nothing new
(same bytes, already there) and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
WORK = Path(os.environ.get("CPRSUB_DEMO_DIR", REPO / "var" / "demo")).resolve()
SFTP_LOGIN, SFTP_PASSWORD = "cpr-demo", "demo-only-password"

#: uuid, name, serves, filters
DEMO_SUBSCRIBERS = [
    ("6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0851", "Aalborg Kommune – ESDH", "0851 Aalborg",
     [("municipality", "851")]),
    ("2b7e4c1d-0101-4a0b-8c3e-5d6f7a8b0101", "Københavns Kommune – Borgerservice",
     "0101 København", [("municipality", "101"), ("municipality", "147")]),
    ("9c0d1e2f-3a4b-4c5d-8e6f-708192a3b4c5", "Odense Kommune – Ældrepleje", "0461 Odense",
     [("municipality", "461"), ("age", "67-120")]),
    ("4d5e6f70-8192-4a3b-9c4d-5e6f7a8b9c0d", "Dødsboskifteretten (events)", "national",
     [("code", "A21"), ("code", "A19")]),
    ("7a8b9c0d-1e2f-4a3b-8c4d-5e6f708192a3", "Forskningsregister (PNR list)", "national",
     [("pnrs", "25")]),
    ("0f1e2d3c-4b5a-4968-8776-655443322110", "Ny kommune-installation (no filters)", "-", []),
]
#: The pick-up demo subscriber: uuid, name, serves, filters, and its login.
PICKUP_DEMO = ("5e6f7081-92a3-4b4c-8d5e-6f708192a3b4", "Herning Kommune – Sag (pick-up)",
               "0657 Herning", [("municipality", "657")])
PICKUP_ACCOUNT = "demo-pickup"
PICKUP_KEY = WORK / "pickup-key"
PICKUP_HOST_KEY = WORK / "pickup-host-key"
MAIL = WORK / "mail"
#: Who the demo's failure alerts are addressed to (the sink takes any address).
ALERT_RECIPIENT = "data-engineers@localhost"


def environment(work: Path = WORK) -> dict[str, str]:
    """Airflow and service settings for a self-contained installation under ``work``."""
    home = work / "airflow"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__MAX_MAP_LENGTH": "2048",
        # `airflow standalone`: each delivery forks from workers holding the task side
        # (issue 16); the demo's own run (dag.test) uses no executor.
        "AIRFLOW__CORE__EXECUTOR": "cpr_abonnement.airflow_side.executor.PreloadedLocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "CPRSUB_DB_URL": f"sqlite:///{work / 'filters.db'}",
        "CPRSUB_INBOUND": f"file://{work / 'inbound'}",
        "CPRSUB_STAGING": f"file://{work / 'staging'}",
        "CPRSUB_QUARANTINE": f"file://{work / 'quarantine'}",
        "CPRSUB_PICKUP_ROOT": str(work / "pickup"),
        "CPRSUB_RETRY_DELAY_SECONDS": "2",
        "CPRSUB_SETTLE_SECONDS": "0",  # the demo writes the extract before the run
        "CPRSUB_ALERT_EMAIL": ALERT_RECIPIENT,
        # Person look-ups (docs/replica.md) need a key for their log; a demo-only one, as
        # the demo SFTP password (production: a secret in .env, the API server's alone).
        "CPRSUB_LOOKUP_KEY": "demo-only-look-up-key",
        # Alert mails link to task logs in the UI of `airflow standalone`.
        "AIRFLOW__API__BASE_URL": "http://localhost:8080",
        "GX_ANALYTICS_ENABLED": "False",
        # Operators read task logs: the delivery and filter lines are INFO.
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("CPRSUB_DEMO_LOG_LEVEL", "INFO"),
    }


def pickup_key(path: Path = PICKUP_KEY) -> str:
    """The pick-up demo login's ed25519 key (generated once, private part 0600, like
    ``ssh-keygen -t ed25519``); returns the public key line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    public = path.with_name(path.name + ".pub")
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
        line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode()
        public.write_text(f"{line} {PICKUP_ACCOUNT}@cpr-demo\n")
    return public.read_text().strip()


def protect_airflow_passwords(home: Path) -> Path:
    """Make the simple auth manager's password file in Airflow home ``home`` readable by
    its owner only (0600, like the keys), before ``airflow standalone`` writes the admin
    password into it in clear.

    Airflow creates that file with the process's umask (0644 under the usual 022), but it
    opens an existing one for appending and rewrites it in place, so the file made here
    keeps its mode, and an empty file still gets its password generated (and printed by
    the api-server). Passwords generated earlier are kept; an older run's 0644 is
    repaired."""
    path = home / "simple_auth_manager_passwords.json.generated"
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)  # no O_TRUNC: keep passwords
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def _add_filters(svc, uuid: str, filters: list[tuple[str, str]], pnrs: list[str]) -> None:
    for kind, value in filters:
        if kind == "municipality":
            svc.add_municipality(uuid, value)
        elif kind == "age":
            svc.add_age_range(uuid, *map(int, value.split("-")))
        elif kind == "code":
            svc.add_change_code(uuid, value)
        else:
            svc.add_pnrs(uuid, [*pnrs[:int(value)], "0101001111"])


def _setup_filters(engine, extract: Path) -> None:
    from sqlalchemy.orm import Session

    from cpr_abonnement.extract.index import scan
    from cpr_abonnement.store.models import Subscriber
    from cpr_abonnement.subscriptions.service import SubscriptionService

    svc = SubscriptionService(engine, caller="demo",
                              clock=lambda: dt.datetime(2026, 1, 1))
    with Session(engine) as s:
        known = set(s.scalars(Subscriber.__table__.select().with_only_columns(Subscriber.uuid)))
    pnrs = scan(extract).pnr_text().tolist()
    for i, (uuid, name, serves, filters) in enumerate(DEMO_SUBSCRIBERS):
        if uuid in known:
            continue
        svc.add_subscriber(uuid, name, serves=serves, sftp_conn_id=f"sftp_demo_{i}",
                           remote_dir=f"/{uuid}")
        _add_filters(svc, uuid, filters, pnrs)
    uuid, name, serves, filters = PICKUP_DEMO
    if uuid not in known:
        svc.add_subscriber(uuid, name, serves=serves, delivery_mode="pickup",
                           pickup_account=PICKUP_ACCOUNT, ssh_keys=[pickup_key()])
        _add_filters(svc, uuid, filters, pnrs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cpr_abonnement.demo",
        description="Run the daily DAG end to end for the latest CPR delivery day on this "
                    "machine's embedded defaults (SQLite, a local SFTP server), then print "
                    "what each demo subscriber received. Run it again to see the idempotent "
                    "re-run.",
        epilog=f"Everything lives under $CPRSUB_DEMO_DIR (now {WORK}); the task log of the "
               "run is written to <dir>/logs/. $CPRSUB_DEMO_LOG_LEVEL sets Airflow's log "
               "level (INFO).")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parse_args(argv)
    from cpr_abonnement.delivery_calendar import DeliveryCalendar

    cal = DeliveryCalendar.default()
    today = dt.datetime.now(dt.UTC).date()
    day = today if cal.is_delivery_day(today) else cal.previous_delivery_day(today)
    env = environment()
    os.environ.update(env)  # before anything imports Airflow
    for sub in ("inbound", "staging", "quarantine", "sftp", "pickup"):
        (WORK / sub).mkdir(parents=True, exist_ok=True)
    print(f"== CPR Abonnement demo for delivery day {day} (work folder {WORK})")
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True)
    protect_airflow_passwords(Path(env["AIRFLOW_HOME"]))

    from cpr_abonnement.dev.devsftp import EmbeddedSftpServer
    from cpr_abonnement.extract.generator import generate
    from cpr_abonnement.extract.naming import extract_name
    from cpr_abonnement.store.db import make_engine, upgrade

    extract = WORK / "inbound" / extract_name(day, "431101")
    if not extract.exists():
        with open(extract, "wb") as fh:
            result = generate(fh, production_date=day, persons=5_000, seed=day.toordinal())
        print(f"   sample extract {extract.name}: {result.persons:,} persons, "
              f"{result.records:,} records")
    engine = make_engine(env["CPRSUB_DB_URL"])
    upgrade(engine)
    _setup_filters(engine, extract)

    from cpr_abonnement.dev import mailsink

    with EmbeddedSftpServer(WORK / "sftp", {SFTP_LOGIN: SFTP_PASSWORD},
                            host_key_file=WORK / "sftp-host-key") as sftp, \
            mailsink.running(MAIL) as mail_port:
        store_connections(ui_sftp_connection(sftp))
        os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = mailsink.airflow_connection(mail_port)
        conn = sftp.airflow_connection(SFTP_LOGIN)
        for i in range(len(DEMO_SUBSCRIBERS)):
            os.environ[f"AIRFLOW_CONN_SFTP_DEMO_{i}"] = conn
        print(f"   embedded SFTP server on 127.0.0.1:{sftp.port} (host key "
              f"{sftp.host_key_line[:40]}…)")
        log = WORK / "logs" / f"dag-test-{day}.log"
        print(f"   running DAG cpr_abonnement_daily with dag.test() (log: {log}) ...",
              flush=True)
        with _output_to(log):
            run = run_dag(day)
    with _output_to(log):  # the servers' connection log lines, like the DAG's
        seen = pickup_login(engine)
    _write_env_file(env)
    summary = _summary(engine, day, run.state)
    return _print_pickup_login(seen) or summary


UI_SFTP_PORT = 2222
UI_PICKUP_PORT = 2223
UI_MAIL_PORT = 2525


def connection_ids() -> list[str]:
    """The demo's push subscribers' Airflow connections, one per subscriber."""
    return [f"sftp_demo_{i}" for i in range(len(DEMO_SUBSCRIBERS))]


def ui_sftp_connection(sftp) -> dict:
    """The push connection for the UI's SFTP server (port 2222, same login and pinned
    host key as this command's server)."""
    conn = json.loads(sftp.airflow_connection(SFTP_LOGIN))
    conn["port"] = UI_SFTP_PORT
    return conn


def store_connections(conn: dict) -> list[str]:
    """Create the demo's SFTP connections in Airflow's metadata database, where Admin →
    Connections shows them and one can edit them (e.g. to break a subscriber's target
    and see the alert). A connection that is already there is left as the user left
    it. Returns the ids created."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    created = []
    with create_session() as session:
        have = set(session.scalars(Connection.__table__.select()
                                   .with_only_columns(Connection.conn_id)))
        for conn_id in connection_ids():
            if conn_id in have:
                continue
            session.add(Connection(
                conn_id=conn_id, conn_type=conn["conn_type"], host=conn["host"],
                port=conn["port"], login=conn["login"], password=conn["password"],
                extra=json.dumps(conn.get("extra") or {}),
                description="CPR Abonnement demo: push target of one demo subscriber "
                            "(the UI's SFTP server, terminal 1)"))
            created.append(conn_id)
    return created


@dataclasses.dataclass
class PickupLogin:
    """What the demo's own pick-up login saw: the port, the pinned host key, ``ls IN``
    (or why the login failed)."""

    port: int
    host_key_line: str
    names: list[str]
    error: str | None = None


def pickup_login(engine) -> PickupLogin:
    """Start the embedded pick-up server as ``cprsub pickup serve`` does and log in as the
    demo account with its key, the way a subscriber's client would, listing ``IN/``.

    Proof that the pick-up half works end to end (database keys, pinned host key, the
    account's chroot), not only that files landed on disk."""
    from paramiko import SSHException

    from cpr_abonnement.pickup.wiring import serve_from_database

    with serve_from_database(engine, WORK / "pickup",
                             host_key_file=PICKUP_HOST_KEY) as server:
        seen = PickupLogin(server.port, server.host_key_line, [])
        try:
            seen.names = _list_pickup_inbox(server.port, server.host_key_line)
        except (OSError, EOFError, SSHException) as e:
            seen.error = f"{type(e).__name__}: {e}"
    return seen


def _print_pickup_login(seen: PickupLogin) -> int:
    """The proof lines of :func:`pickup_login` under the summary; the exit status."""
    where = f"pick-up server on 127.0.0.1:{seen.port} (host key {seen.host_key_line[:40]}…)"
    if seen.error:
        print(f"\n{where}: login as {PICKUP_ACCOUNT} FAILED: {seen.error}")
        return 1
    print(f"\n{where}: {PICKUP_ACCOUNT} logged in with {PICKUP_KEY}")
    print("  sftp> ls IN\n" + "".join(f"  {name}\n" for name in seen.names), end="")
    return 0


def _list_pickup_inbox(port: int, host_key_line: str) -> list[str]:
    """Names in ``IN/`` of the demo pick-up account, over SFTP with the demo key; the
    server's host key must be the pinned one (as ``known_hosts`` would check)."""
    import base64

    import paramiko

    kind, blob = host_key_line.split()
    pinned = paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
    key = paramiko.Ed25519Key.from_private_key_file(str(PICKUP_KEY))
    with paramiko.Transport(("127.0.0.1", port)) as transport:
        transport.connect(hostkey=pinned, username=PICKUP_ACCOUNT, pkey=key)
        with paramiko.SFTPClient.from_transport(transport) as sftp:
            return sorted(sftp.listdir("IN"))


def _write_env_file(env: dict[str, str]) -> None:
    """``var/demo/airflow.env``: the same setup for ``airflow standalone`` (README). The
    SFTP connections are in the metadata database (:func:`store_connections`), not here,
    so the UI shows them; the mail sink's SMTP connection is here."""
    from cpr_abonnement.dev import mailsink

    # `airflow standalone` starts its components as `airflow ...` from PATH.
    lines = [f"export PATH='{Path(sys.executable).parent}':\"$PATH\""]
    lines += [f"export {k}='{v}'" for k, v in env.items()]
    lines.append(f"export AIRFLOW_CONN_SMTP_DEFAULT='{mailsink.airflow_connection(UI_MAIL_PORT)}'")
    lines.append(f"# Mail sink for the UI (alerts as .eml files): .venv/bin/python -m "
                 f"cpr_abonnement.dev.mailsink --dir {MAIL} --port {UI_MAIL_PORT}")
    lines.append(f"# SFTP for the UI: .venv/bin/python -m cpr_abonnement.devsftp --root "
                 f"{WORK / 'sftp'} --port {UI_SFTP_PORT} --host-key {WORK / 'sftp-host-key'} "
                 f"--user {SFTP_LOGIN}:{SFTP_PASSWORD}")
    lines.append(f"# Pick-up SFTP for the UI: {Path(sys.executable).parent / 'cprsub'} pickup "
                 f"serve --db {env['CPRSUB_DB_URL']} --host 127.0.0.1 --port {UI_PICKUP_PORT} "
                 f"--root {WORK / 'pickup'} --host-key {PICKUP_HOST_KEY}")
    (WORK / "airflow.env").write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (Airflow's task logging writes there during
    ``dag.test()``) to ``path``, so the terminal shows the summary and the file the log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_dag(day: dt.date):
    """Run ``cpr_abonnement_daily`` for ``day`` in this process with ``dag.test()``."""
    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    return bag.get_dag("cpr_abonnement_daily").test(
        logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC"))


def _summary(engine, day: dt.date, state: str) -> int:
    import xmltodict

    from cpr_abonnement.records import ledger

    by_subscriber = {e.subscriber_uuid: e for e in ledger.entries(engine, "431101", day)}
    print(f"\n== run {state}: what each subscriber received")
    pickup_uuid, pickup_name, _, pickup_filters = PICKUP_DEMO
    shown = [(uuid, name, filters, WORK / "sftp" / uuid, f"sftp:/{uuid}")
             for uuid, name, _, filters in DEMO_SUBSCRIBERS]
    shown.append((pickup_uuid, pickup_name, pickup_filters,
                  WORK / "pickup" / PICKUP_ACCOUNT / "IN", f"pick-up {PICKUP_ACCOUNT}:IN"))
    for uuid, name, filters, folder, where in shown:
        files = sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []
        e = by_subscriber.get(uuid)
        rule = ", ".join(f"{k} {v}" for k, v in filters) or "no filters"
        if e is None:
            print(f"  {name:<40} NOT DELIVERED")
            continue
        meta_file = folder / f"{e.file_name}.metadata"
        content = (xmltodict.parse(meta_file.read_bytes())["ns2:Trigger"]
                   ["FileContentDescriptor"] if meta_file.exists() else {})
        print(f"  {name:<40} {e.outcome:<17} {content.get('cpr:Persons', 0):>5} persons "
              f"{content.get('cpr:Records', 0):>6} records  [{rule}]")
        print(f"  {'':<40} {where}/{{{', '.join(files)}}}")
    print(f"\nSFTP root: {WORK / 'sftp'}   pick-up root: {WORK / 'pickup'} (key "
          f"{PICKUP_KEY})   ledger and filters: {WORK / 'filters.db'}")
    print(f"Same setup in the Airflow UI: see README, 'Run it in the Airflow UI' "
          f"({WORK / 'airflow.env'})")
    return 0 if state == "success" else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Shared fixtures: an Airflow home, databases on SQLite and on a real PostgreSQL server,
``cprsub`` against a test database, and a deployment of the daily DAG (folders, filter
database, SFTP and SMTP servers)."""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Airflow reads its configuration when first imported, so the test Airflow home (empty
# SQLite metadata DB, this repository's dags/ and plugins/) is set before any import.
ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_HOME = tempfile.mkdtemp(prefix="cprsub-airflow-")
os.environ.update({
    "AIRFLOW_HOME": AIRFLOW_HOME,
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
    "GX_ANALYTICS_ENABLED": "False",
    # One key for this process and the `airflow` commands tests run, as a deployment has
    # one: connections stored by `airflow connections add` are read back here.
    "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
})

import pytest
from sqlalchemy import create_engine, text

from cpr_abonnement.cli import main
from cpr_abonnement.dev.devsftp import EmbeddedSftpServer
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.deployment import SUBSCRIBERS, Deployment
from support.servers import postgres_server
from support.smtp import smtp_server

_db_names = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules marked ``slow`` first, each group still in pytest-randomly's order.

    ``scripts/test.sh`` hands whole modules to the workers in this order
    (``--dist loadscope``): a module holding a worker for a minute, started last, would
    finish alone while the other workers wait. Runs after pytest-randomly's shuffle
    (a wrapper that reorders before every other implementation), so the seed still
    replays the order.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def airflow_db():
    """The session's Airflow metadata DB, migrated to head: a copy of a template that
    ``airflow db migrate`` built once per installed Airflow version (it costs ~20 s)."""
    shutil.copyfile(_migrated_template(), Path(AIRFLOW_HOME) / "airflow.db")


def _migrated_template() -> Path:
    """``var/cache/airflow-db/airflow-<version>.db``, built on first use: by one of the
    parallel sessions (xdist workers all want it at their start), which the others wait
    for, and renamed into place whole."""
    from importlib.metadata import version

    cache = ROOT / "var" / "cache" / "airflow-db"
    template = cache / f"airflow-{version('apache-airflow-core')}.db"
    if template.exists():
        return template
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".building", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed
        if not template.exists():
            _migrate_into(template)
    return template


def _migrate_into(template: Path) -> None:
    with tempfile.TemporaryDirectory(dir=template.parent) as scratch:
        db = Path(scratch) / "airflow.db"
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                       check=True, capture_output=True,
                       env={**os.environ, "AIRFLOW_HOME": scratch,
                            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}"})
        os.replace(db, template)


@pytest.fixture(scope="session")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'filters.db'}"


@pytest.fixture
def new_postgres_database(postgres_url):
    """Makes new, empty databases on the session's PostgreSQL server; returns its URL."""
    def make() -> str:
        name = f"t{next(_db_names)}"
        admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        return postgres_url.rsplit("/", 1)[0] + f"/{name}"
    return make


@pytest.fixture
def fresh_postgres_url(new_postgres_database):
    """A new, empty database on the session's PostgreSQL server."""
    return new_postgres_database()


@pytest.fixture
def foreign_account():
    """The name of a real Unix account of this machine that the pick-up sync did not
    make (unique, removed afterwards): a pick-up account must never be one."""
    import secrets

    from support.pickup import unix_account

    if os.geteuid() != 0:
        pytest.skip("needs root (useradd)")
    with unix_account(f"fx{secrets.token_hex(3)}") as name:
        yield name


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    """Run the test once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    return request.getfixturevalue(name)


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Settings for task bodies on local folders: inbound, staging and quarantine under
    ``tmp_path``, no settle time (the extract is complete before the test runs)."""
    from cpr_abonnement.settings import Settings

    for d in ("inbound", "staging", "quarantine"):
        (tmp_path / d).mkdir()
        monkeypatch.setenv(f"CPRSUB_{d.upper()}", f"file://{tmp_path / d}")
    monkeypatch.setenv("CPRSUB_SETTLE_SECONDS", "0")
    return Settings.from_env()


@pytest.fixture
def cli(db_url, capsys):
    """``cprsub`` in this process against the test database (upgraded first): each call
    gives (exit code, stdout, stderr)."""
    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args[:2], "--db", db_url, *args[2:]])
        out = capsys.readouterr()
        return code, out.out, out.err
    assert run("db", "upgrade")[0] == 0
    return run


@pytest.fixture
def filter_db_url(tmp_path) -> str:
    """The deployment's filter database: the embedded SQLite file. A test module that
    runs the DAG on PostgreSQL overrides this fixture."""
    return f"sqlite:///{tmp_path / 'filters.db'}"


@pytest.fixture
def deployment(airflow_db, tmp_path, monkeypatch, filter_db_url):
    root = tmp_path
    dirs = {n: root / n for n in ("inbound", "staging", "quarantine", "sftp")}
    for d in dirs.values():
        d.mkdir()
    db_url = filter_db_url
    engine = make_engine(db_url)
    upgrade(engine)
    svc = SubscriptionService(engine, caller="test",
                              clock=lambda: dt.datetime(2026, 1, 1))
    for uuid, (name, conn, flt) in SUBSCRIBERS.items():
        svc.add_subscriber(uuid, name, sftp_conn_id=conn, remote_dir=f"/{uuid}")
        if flt and flt[0] == "kom":
            svc.add_municipality(uuid, flt[1])
        elif flt:
            svc.add_change_code(uuid, flt[1])
    with EmbeddedSftpServer(dirs["sftp"], {"cpr": "delivery-secret"}) as sftp, \
            smtp_server() as (inbox, smtp_port):
        for _, conn, _ in SUBSCRIBERS.values():
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn.upper()}", sftp.airflow_connection("cpr"))
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port,
            "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10,
                      "retry_limit": 0, "from_email": "airflow@cpr-abonnement.example"}}))
        for key, value in {
            "CPRSUB_INBOUND": f"file://{dirs['inbound']}",
            "CPRSUB_STAGING": f"file://{dirs['staging']}",
            "CPRSUB_QUARANTINE": f"file://{dirs['quarantine']}",
            "CPRSUB_DB_URL": db_url,
            "CPRSUB_ALERT_EMAIL": "data-engineers@cpr-abonnement.example",
            "CPRSUB_DELIVERY_RETRIES": "1",
            "CPRSUB_RETRY_DELAY_SECONDS": "0.2",
            "CPRSUB_POKE_SECONDS": "1",
            "CPRSUB_SETTLE_SECONDS": "0",  # files are written before the run
            "CPRSUB_EXTRACT_DEADLINE_HOURS": "0",
        }.items():
            monkeypatch.setenv(key, value)
        yield Deployment(root, dirs["inbound"], dirs["staging"], dirs["quarantine"],
                         dirs["sftp"], engine, inbox, sftp)

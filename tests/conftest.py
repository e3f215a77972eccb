"""Shared fixtures: an Airflow home, databases on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import base64
import itertools
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

from cpr_abonnement.store.db import make_engine, upgrade
from support.servers import postgres_server

_db_names = itertools.count()


@pytest.fixture(scope="session")
def airflow_db():
    """The session's Airflow metadata DB, migrated to head: a copy of a template that
    ``airflow db migrate`` built once per installed Airflow version (it costs ~20 s)."""
    shutil.copyfile(_migrated_template(), Path(AIRFLOW_HOME) / "airflow.db")


def _migrated_template() -> Path:
    """``var/cache/airflow-db/airflow-<version>.db``, built on first use (atomically, as
    parallel sessions may race to build it)."""
    from importlib.metadata import version

    cache = ROOT / "var" / "cache" / "airflow-db"
    template = cache / f"airflow-{version('apache-airflow-core')}.db"
    if template.exists():
        return template
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        db = Path(scratch) / "airflow.db"
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                       check=True, capture_output=True,
                       env={**os.environ, "AIRFLOW_HOME": scratch,
                            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}"})
        os.replace(db, template)
    return template


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


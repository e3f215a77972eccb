"""Inside Airflow the filter database must be named, never guessed."""

from __future__ import annotations

import pytest

from cpr_abonnement.airflow_side.connections import AIRFLOW_CONN_ID, task_engine
from cpr_abonnement.errors import FilterDatabaseUnavailable


@pytest.fixture
def no_db_url(monkeypatch, tmp_path):
    monkeypatch.delenv("CPRSUB_DB_URL", raising=False)
    monkeypatch.delenv(f"AIRFLOW_CONN_{AIRFLOW_CONN_ID.upper()}", raising=False)
    monkeypatch.chdir(tmp_path)  # the old fallback would create ./var/filters.db here
    return tmp_path


def test_missing_connection_fails_loudly_naming_it(no_db_url):
    with pytest.raises(FilterDatabaseUnavailable, match=AIRFLOW_CONN_ID):
        task_engine()
    assert not (no_db_url / "var").exists()


def test_broken_connection_fails_loudly_naming_it(no_db_url, monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{AIRFLOW_CONN_ID.upper()}",
                       '{"conn_type": "postgres", "host": "127.0.0.1", "port": 1, '
                       '"login": "u", "password": "secret-pw", "schema": "cpr"}')
    with pytest.raises(FilterDatabaseUnavailable, match=AIRFLOW_CONN_ID) as exc:
        task_engine()
    assert "secret-pw" not in str(exc.value)


def test_connection_is_used_when_set(no_db_url, monkeypatch):
    path = no_db_url / "filters.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{AIRFLOW_CONN_ID.upper()}",
                       f'{{"conn_type": "sqlite", "host": "{path}"}}')
    engine = task_engine()
    assert engine.url.database == str(path)
    engine.dispose()

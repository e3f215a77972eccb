"""Issue 16: the API's PostgreSQL pool. A connection in steady use is not checked
before each call (SQLAlchemy's ``pool_pre_ping`` cost a round trip per call); one that
lay unused is, so a connection the server dropped meanwhile is replaced, not failed."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from cpr_abonnement.store import db
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.outcomes import Result
from cpr_abonnement.subscriptions.service import SubscriptionService

A = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"


@pytest.fixture
def service(fresh_postgres_url):
    upgrade(make_engine(fresh_postgres_url))
    engine = make_engine(fresh_postgres_url, connections=1)
    svc = SubscriptionService(engine, caller="test")
    svc.add_subscriber(A, "Aalborg ESDH")
    yield svc
    engine.dispose()


def drop_connections(url: str) -> int:
    """What a database restart does to the pool: the server ends every other session."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        ended = c.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one()
    admin.dispose()
    return ended


def count_checks(engine, monkeypatch) -> list[int]:
    checks = [0]
    real = engine.dialect.do_ping

    def counted(dbapi_conn):
        checks[0] += 1
        return real(dbapi_conn)
    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return checks


def test_a_connection_in_steady_use_is_not_checked(service, monkeypatch):
    checks = count_checks(service.engine, monkeypatch)
    for serial in range(5):
        service.add_pnr(A, f"01019{serial}1234")
    assert checks == [0]


def test_an_idle_connection_is_checked_and_replaced_when_dropped(service, monkeypatch):
    checks = count_checks(service.engine, monkeypatch)
    monkeypatch.setattr(db, "IDLE_CHECK_SECONDS", 0.0)   # every connection counts as idle
    assert drop_connections(service.engine.url.render_as_string(hide_password=False)) >= 1
    assert service.add_pnr(A, "0101901234").result is Result.ADDED
    assert checks[0] >= 1


def test_without_the_check_a_dropped_connection_fails_the_call(service):
    """The control: the connection the server dropped is really in the pool."""
    assert drop_connections(service.engine.url.render_as_string(hide_password=False)) >= 1
    with pytest.raises(OperationalError):
        service.add_pnr(A, "0101901234")

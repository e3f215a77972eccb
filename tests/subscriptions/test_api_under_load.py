"""Issue 16, item 2: the subscription API under concurrent load.

* Concurrent writers in one API process must queue on an in-process lock, not in
  SQLite's busy handler (which sleeps up to 100 ms a retry: p99 of seconds).
* GetAllFilters is a read: it must not wait for the filter lock another transaction
  holds (it did, and so serialised with every write of every IT system).
* A bearer token is verified against the database once and then served from a small
  in-process cache keyed by a keyed hash; revocation and disabling still take effect
  within the cache's lifetime, a revocation in the same process at once.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from cpr_abonnement.subscriptions import credentials
from cpr_abonnement.subscriptions.credentials import Role
from cpr_abonnement.subscriptions.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import Result, SubscriptionService, lock_filters, utcnow

A = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"


def _pnrs(n: int) -> list[str]:
    """Distinct synthetic PNRs (valid dates, serials from 1000)."""
    return [f"0101{70 + i // 9000:02d}{1000 + i % 9000:04d}" for i in range(n)]


@pytest.fixture
def service(engine):
    svc = SubscriptionService(engine, caller="test")
    svc.add_subscriber(A, "Aalborg ESDH")
    return svc


def test_concurrent_sqlite_writers_queue_in_process(sqlite_url):
    """With SQLite's busy handler out of play (busy_timeout 0: any contention on the
    database lock fails at once), 8 threads adding PNRs concurrently all succeed."""
    engine = make_engine(sqlite_url)
    upgrade(engine)
    svc = SubscriptionService(engine, caller="test")
    svc.add_subscriber(A, "Aalborg ESDH")

    @event.listens_for(engine, "connect")
    def _no_busy_wait(dbapi_conn, _record) -> None:  # injects the failure condition
        dbapi_conn.execute("PRAGMA busy_timeout = 0")
    engine.dispose()  # new connections get the pragma

    pnrs = _pnrs(160)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda p: svc.add_pnr(A, p).result, pnrs))
    assert results == [Result.ADDED] * len(pnrs)
    assert len(svc.get_all_filters(A).pnrs) == len(pnrs)
    engine.dispose()


def test_get_all_filters_does_not_wait_for_the_filter_lock(fresh_postgres_url):
    """A transaction holding the filter lock (a long bulk load, a snapshot) must not
    hold up GetAllFilters of any IT system."""
    engine = make_engine(fresh_postgres_url)
    upgrade(engine)
    svc = SubscriptionService(engine, caller="test")
    svc.add_subscriber(A, "Aalborg ESDH")
    svc.add_pnr(A, "0101701000")
    held, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with Session(engine) as s, s.begin():
            lock_filters(s)
            held.set()
            release.wait(30)
    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert held.wait(10)
        with ThreadPoolExecutor(1) as pool:
            found = pool.submit(svc.get_all_filters, A)
            pnrs = found.result(timeout=10).pnrs
        assert [p.pnr if hasattr(p, "pnr") else p for p in pnrs] == ["0101701000"]
    finally:
        release.set()
        holder.join()
        engine.dispose()


def _statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: seen.append(statement))
    return seen


def test_a_verified_token_is_not_looked_up_again(engine, service):
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="esdh", subscriber_uuid=A)
    first = credentials.authenticate(engine, token)
    seen = _statements(engine)
    again = credentials.authenticate(engine, token)
    assert again == first and again is not None
    assert seen == []


def test_cached_token_still_needs_its_secret(engine, service):
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="esdh", subscriber_uuid=A)
    assert credentials.authenticate(engine, token) is not None
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert credentials.authenticate(engine, forged) is None


def test_revocation_in_this_process_takes_effect_at_once(engine, service):
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="esdh", subscriber_uuid=A)
    principal = credentials.authenticate(engine, token)
    assert credentials.revoke(engine, principal.token_id)
    assert credentials.authenticate(engine, token) is None


def test_revocation_elsewhere_takes_effect_within_the_cache_lifetime(engine, service,
                                                                     monkeypatch):
    """Revoked by another process (the CLI): this process's cache forgets the token
    within ``VERIFIED_TOKEN_SECONDS``; so does disabling the IT system."""
    monkeypatch.setattr(credentials, "VERIFIED_TOKEN_SECONDS", 0.5)
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="esdh", subscriber_uuid=A)
    other = credentials.issue(engine, role=Role.SUBSCRIBER, label="esdh2", subscriber_uuid=A)
    principal = credentials.authenticate(engine, token)
    assert credentials.authenticate(engine, other) is not None
    elsewhere = make_engine(engine.url.render_as_string(hide_password=False))
    with Session(elsewhere) as s, s.begin():  # as another process would: no cache to clear
        from cpr_abonnement.subscriptions.models import Credential
        s.query(Credential).filter_by(token_id=principal.token_id).update(
            {"revoked_at": utcnow()})
    elsewhere.dispose()
    SubscriptionService(engine, caller="admin").set_active(A, False)
    time.sleep(0.6)
    assert credentials.authenticate(engine, token) is None
    assert credentials.authenticate(engine, other) is None


def test_disabling_in_this_process_takes_effect_at_once(engine, service):
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="esdh", subscriber_uuid=A)
    assert credentials.authenticate(engine, token) is not None
    service.set_active(A, False)
    assert credentials.authenticate(engine, token) is None

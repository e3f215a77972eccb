"""Issue 16, item 2: the subscription API under concurrent load.

* Concurrent writers in one API process must queue on an in-process lock, not in
  SQLite's busy handler (which sleeps up to 100 ms a retry: p99 of seconds).
* GetAllFilters is a read: it must not wait for the filter lock another transaction
  holds (it did, and so serialised with every write of every IT system).
* On PostgreSQL, changes of single filters hold the filter lock shared: they do not
  wait for each other, a snapshot instant waits until those in flight have committed,
  and two adds of one filter at once add it once.
* A bearer token is verified against the database once and then served from a small
  in-process cache keyed by a keyed hash; revocation and disabling still take effect
  within the cache's lifetime, a revocation in the same process at once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from cpr_abonnement.filters import PNR
from cpr_abonnement.filters.pnr import PnrFilter
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.records import extract_runs
from cpr_abonnement.store.clock import lock_filters, utcnow
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.outcomes import Result
from cpr_abonnement.subscriptions.service import SubscriptionService
from cpr_abonnement.subscriptions.statements import SUBSCRIBER_REF as _SUBSCRIBER_REF

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


@pytest.fixture
def pg_service(fresh_postgres_url):
    engine = make_engine(fresh_postgres_url)
    upgrade(engine)
    svc = SubscriptionService(engine, caller="test")
    svc.add_subscriber(A, "Aalborg ESDH")
    yield svc
    engine.dispose()


@contextmanager
def change_in_flight(engine, work: Callable[[Session, dt.datetime], None] = lambda s, t: None,
                     *, shared: bool = True) -> Iterator[dt.datetime]:
    """A change holding the filter lock (``shared``: as single-filter changes do), stamped
    and not yet committed (``work`` runs in it): yields its stamp; commits on leaving."""
    stamped, release = threading.Event(), threading.Event()
    stamp: list[dt.datetime] = []

    def change() -> None:
        with Session(engine) as s, s.begin():
            stamp.append(lock_filters(s, shared=shared))
            work(s, stamp[0])
            s.flush()
            stamped.set()
            release.wait(30)
    holder = threading.Thread(target=change)
    holder.start()
    try:
        assert stamped.wait(10)
        yield stamp[0]
    finally:
        release.set()
        holder.join()


def test_get_all_filters_does_not_wait_for_the_filter_lock(pg_service):
    """A transaction holding the filter lock exclusively (a long bulk load, a snapshot)
    must not hold up GetAllFilters of any IT system."""
    pg_service.add_pnr(A, "0101701000")
    with change_in_flight(pg_service.engine, shared=False), ThreadPoolExecutor(1) as pool:
        found = pool.submit(pg_service.get_all_filters, A)
        assert found.result(timeout=10).pnrs == ["0101701000"]


def test_single_filter_changes_do_not_wait_for_each_other(pg_service):
    """One IT system's reconciliation job adds PNRs from 20 connections at once: a
    change in flight must not hold up the next (they queued on one row lock)."""
    with change_in_flight(pg_service.engine), ThreadPoolExecutor(1) as pool:
        added = pool.submit(pg_service.add_pnr, A, "0101701000")
        assert added.result(timeout=10).result is Result.ADDED


def test_a_snapshot_instant_waits_for_changes_in_flight(pg_service):
    """A change stamped before the snapshot instant is chosen commits before it, so the
    snapshot holds it and a re-run of the day reproduces the selection."""
    def add(s: Session, now: dt.datetime) -> None:
        sub = s.execute(_SUBSCRIBER_REF, {"p_system": A}).one()
        s.add(PnrFilter(subscriber_id=sub.id, pnr=101701000, added_at=now))
    # The pool outside the change: leaving the change commits it, and only then may the
    # pool wait for the registration (the other way round both waited 30 s for the
    # change's own time-out).
    with ThreadPoolExecutor(1) as pool, change_in_flight(pg_service.engine, add) as stamp:
        registered = pool.submit(
            extract_runs.register, pg_service.engine, task_number="431101",
            production_date=dt.date(2025, 3, 14), previous_date=dt.date(2025, 3, 13),
            file_name="D250314.L431101", sha256="0" * 64, persons=1, records=1)
        time.sleep(0.5)
        assert not registered.done()      # waits for the change's commit
    instant = registered.result(timeout=10).filters_as_of
    assert stamp < instant
    assert [getattr(p, "pnr", p) for p in pg_service.get_all_filters(A, instant).pnrs] \
        == ["0101701000"]


def add_through_the_service(svc: SubscriptionService) -> Callable[[Session, dt.datetime], None]:
    """The service's own add of PNR 0101701000 (its statement), for a change in flight."""
    def add(s: Session, now: dt.datetime) -> None:
        sub = s.execute(_SUBSCRIBER_REF, {"p_system": A}).one()
        assert svc._add(PNR)(s, sub, {"pnr": "0101701000"}, now).result is Result.ADDED
    return add


def test_two_adds_of_one_filter_at_once_add_it_once(pg_service):
    """The second add waits for the first's commit on the unique index of current
    filters and reports ALREADY_EXISTED instead of failing on it."""
    with ThreadPoolExecutor(1) as pool:
        with change_in_flight(pg_service.engine, add_through_the_service(pg_service)):
            second = pool.submit(pg_service.add_pnr, A, "0101701000")
            time.sleep(0.5)
            assert not second.done()
        assert second.result(timeout=10).result is Result.ALREADY_EXISTED
    assert len(pg_service.get_all_filters(A).pnrs) == 1


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
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="esdh", subscriber_uuid=A)
    other = credentials.issue(engine, role=Role.SUBSCRIBER, label="esdh2", subscriber_uuid=A)
    principal = credentials.authenticate(engine, token)
    assert credentials.authenticate(engine, other) is not None
    elsewhere = make_engine(engine.url.render_as_string(hide_password=False))
    with Session(elsewhere) as s, s.begin():  # as another process would: no cache to clear
        from cpr_abonnement.store.models import Credential
        s.query(Credential).filter_by(token_id=principal.token_id).update(
            {"revoked_at": utcnow()})
    elsewhere.dispose()
    SubscriptionService(engine, caller="admin").set_active(A, False)
    later = time.monotonic() + credentials.VERIFIED_TOKEN_SECONDS + 1
    monkeypatch.setattr(credentials._verified, "clock", lambda: later)
    assert credentials.authenticate(engine, token) is None
    assert credentials.authenticate(engine, other) is None


def test_disabling_in_this_process_takes_effect_at_once(engine, service):
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="esdh", subscriber_uuid=A)
    assert credentials.authenticate(engine, token) is not None
    service.set_active(A, False)
    assert credentials.authenticate(engine, token) is None

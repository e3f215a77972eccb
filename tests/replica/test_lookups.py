"""Look-ups and their log: every look-up recorded with the PNR as a keyed hash, found
again only with the key; ``lookup_scope: subscribed`` limits a system to the persons
its subscriptions select; a malformed number or a missing key answers nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cpr_abonnement.errors import (
    InvalidPnr,
    InvalidSubscriber,
    LookupKeyMissing,
    PersonNotFound,
)
from cpr_abonnement.replica.lookups import Caller, look_up, lookups_of, pnr_hash
from cpr_abonnement.replica.state import STATUS
from cpr_abonnement.replica.updating import apply_extract
from cpr_abonnement.store.models import ReplicaLookup, Subscriber
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.replica import blocks_of, fields, status_extract

SYSTEM = "eeeeeeee-0000-4000-8000-000000000005"
KEY = "a-long-random-secret"
NOW = dt.datetime(2026, 11, 20, 9)


@pytest.fixture
def population(engine, tmp_path):
    path = status_extract(tmp_path, dt.date(2026, 11, 16), 120)
    apply_extract(engine, path, kind=STATUS)
    svc = SubscriptionService(engine, caller="test", clock=lambda: dt.datetime(2026, 1, 1))
    svc.add_subscriber(SYSTEM, "Scoped ESDH", sftp_conn_id="sftp_x", remote_dir="/x")
    return blocks_of(path)


def _look(engine, pnr, key=KEY):
    return look_up(engine, pnr, Caller(SYSTEM, "user-1", "soap"), key=key, now=lambda: NOW)


def _rows(engine) -> list[ReplicaLookup]:
    with Session(engine) as s:
        return list(s.scalars(select(ReplicaLookup).order_by(ReplicaLookup.id)))


def test_each_look_up_is_logged_with_a_keyed_hash_that_only_the_key_finds(engine, population):
    known = next(iter(population))
    unknown = known[:6] + ("0000" if known[6:] != "0000" else "0001")
    assert _look(engine, known).person.pnr == known
    with pytest.raises(PersonNotFound) as err:
        _look(engine, unknown)
    assert unknown not in str(err.value) and unknown[:6] + "-****" in str(err.value)
    rows = _rows(engine)
    assert [(r.result, r.system, r.user_uuid, r.transport) for r in rows] == [
        ("FOUND", SYSTEM, "user-1", "soap"), ("NOT FOUND", SYSTEM, "user-1", "soap")]
    assert all(known not in r.pnr_hash and unknown not in r.pnr_hash for r in rows)
    assert rows[0].pnr_hash == pnr_hash(known, KEY) != pnr_hash(known, "another key")
    window = dt.datetime(2026, 11, 1), dt.datetime(2026, 12, 1)
    assert [r.result for r in lookups_of(engine, known, KEY, *window)] == ["FOUND"]
    assert lookups_of(engine, known, "another key", *window) == []


def test_a_malformed_number_or_a_missing_key_answers_nothing_and_logs_nothing(
        engine, population):
    with pytest.raises(InvalidPnr):
        _look(engine, "3213001234")  # no 32nd day
    with pytest.raises(LookupKeyMissing, match="CPRSUB_LOOKUP_KEY"):
        _look(engine, next(iter(population)), key=None)
    assert _rows(engine) == []


def test_a_subscribed_scope_finds_only_the_persons_the_systems_filters_select(
        engine, population):
    at_home = {p: fields(b, "002")["KOMKOD"] for p, b in population.items()
               if fields(b, "002")}
    here, there = next(iter(at_home.items())), next(
        (p, k) for p, k in at_home.items() if k != next(iter(at_home.values())))
    svc = SubscriptionService(engine, caller="test", clock=lambda: dt.datetime(2026, 1, 1))
    svc.add_municipality(SYSTEM, here[1])
    _look(engine, there[0])  # scope "all" (the default): anyone
    with Session(engine) as s, s.begin():
        s.execute(update(Subscriber).where(Subscriber.uuid == SYSTEM)
                  .values(lookup_scope="subscribed"))
    assert _look(engine, here[0]).person.address.municipality == here[1]
    with pytest.raises(PersonNotFound, match="may look up"):
        _look(engine, there[0])
    assert [r.result for r in _rows(engine)] == ["FOUND", "FOUND", "OUT OF SCOPE"]


def test_the_log_forgets_rows_past_their_lifetime_and_audits_it(engine, population):
    from cpr_abonnement.lifecycle import forget_lookups
    from cpr_abonnement.store.models import AuditEntry

    pnr = next(iter(population))
    for day in (1, 2, 3):
        look_up(engine, pnr, Caller(SYSTEM, None, "rest"), key=KEY,
                now=lambda d=day: dt.datetime(2021, 11, d, 12))
    gone = forget_lookups(engine, dt.datetime(2021, 11, 2, 12), caller="housekeeping",
                         now=dt.datetime(2026, 11, 2, 12), rule="CPRSUB_LOOKUP_LOG_DAYS=1826")
    assert gone == 1 and [r.looked_up_at.day for r in _rows(engine)] == [2, 3]
    with Session(engine) as s:
        (audit,) = s.scalars(select(AuditEntry).where(
            AuditEntry.operation == "RetentionRemoval")).all()
    assert '"rows": 1' in audit.arguments and pnr not in audit.arguments


def test_an_operator_sets_the_scope_and_the_trail_says_so(engine, population, db_url, cli):
    code, out, _ = cli("subscriber", "update", "--uuid", SYSTEM, "--lookup-scope", "subscribed")
    assert code == 0 and "lookup_scope" in out
    with Session(engine) as s:
        assert s.scalar(select(Subscriber.lookup_scope).where(
            Subscriber.uuid == SYSTEM)) == "subscribed"
    with pytest.raises(InvalidSubscriber, match="lookup_scope is one of all, subscribed"):
        SubscriptionService(engine, caller="test").update_subscriber(SYSTEM,
                                                                     lookup_scope="some")

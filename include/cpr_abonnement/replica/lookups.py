"""Person look-ups in the replica, each one recorded: who asked for whom, when, and what
they got.

A citizen may ask which authorities' systems looked them up (an access request), so
every look-up leaves a row, refusals included. The row holds the PNR only as an
HMAC-SHA-256 under a secret key (``CPRSUB_LOOKUP_KEY``): given a PNR the rows for it are
found (:func:`lookups_of`), but the log alone cannot be read back into numbers, not
even by trying every one of the ~3.65M valid birth dates × serials, without the key.

The transports (SF1520 SOAP, REST) authorise the caller first and call
:func:`look_up`; this module knows nothing of certificates or tokens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from sqlalchemy import Engine, bindparam, case, insert, or_, select
from sqlalchemy.orm import Session

from cpr_abonnement.cpr_number import validate
from cpr_abonnement.errors import LookupKeyMissing, PersonNotFound
from cpr_abonnement.masking import mask
from cpr_abonnement.replica.person import Person, read_person, split_block
from cpr_abonnement.replica.scope import ALL, SUBSCRIBED, selected_by
from cpr_abonnement.store.db import writing
from cpr_abonnement.store.models import ReplicaLookup, ReplicaPerson, Subscriber

FOUND, NOT_FOUND, OUT_OF_SCOPE = "FOUND", "NOT FOUND", "OUT OF SCOPE"


@dataclass(frozen=True)
class Caller:
    """Who looks up, as the transport proved it."""

    system: str | None
    user_uuid: str | None
    transport: str


@dataclass(frozen=True)
class Found:
    """A person as the replica holds them, and from which day's extract."""

    person: Person
    production_date: dt.date


def pnr_hash(pnr: str, key: str | None) -> str:
    """The PNR as the look-up log stores it."""
    if not key:
        raise LookupKeyMissing("CPRSUB_LOOKUP_KEY is not set: every look-up is recorded "
                               "with the PNR as a keyed hash, so none is answered without "
                               "the key (set a long random secret; keep it to read the log)")
    return hmac.new(key.encode(), pnr.encode("ascii"), hashlib.sha256).hexdigest()


_SCOPE = select(Subscriber.lookup_scope).where(Subscriber.uuid == bindparam("system"))
_PERSON = (select(ReplicaPerson.block, ReplicaPerson.production_date)
           .where(or_(ReplicaPerson.pnr == bindparam("pnr"),
                      ReplicaPerson.current_pnr == bindparam("pnr")))
           .order_by(case((ReplicaPerson.pnr == bindparam("pnr"), 0), else_=1)).limit(1))
#: The person and the caller's scope in one round trip, when the replica lives in the
#: filter database (the default).
_PERSON_AND_SCOPE = _PERSON.add_columns(_SCOPE.scalar_subquery().label("scope"))
#: Built once: a statement built per call costs its cache key every time (0.2 ms).
_RECORD = insert(ReplicaLookup.__table__)


@cache
def _single_statements(engine: Engine) -> Engine:
    """``engine`` (same pool) running each statement as its own transaction on
    PostgreSQL: a look-up's reads and its log row need no BEGIN, COMMIT or ROLLBACK round
    trips of their own (three statements instead of seven; 2.1 → 1.4 ms per look-up on
    a local server). SQLite has no round trips to save and keeps its writer queue."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def find(engine: Engine, pnr: str) -> Found | None:
    """The person with number ``pnr``: their own block, or, for a number that replaced
    another (status 50/60 under the old one), the old number's block until the new
    number's own block arrives. Nobody is dropped for being dead, emigrated, annulled
    or disappeared: their block says so."""
    return _find(engine, engine, pnr, None)[0]


def _find(engine: Engine, replica: Engine, pnr: str, system: str | None
          ) -> tuple[Found | None, str]:
    """:func:`find` in ``replica``, and the look-up scope of ``system`` (``all`` without
    one) in the filter database ``engine``; in one statement when they are the same
    database. The scope matters only for a person found."""
    scope = None
    with _single_statements(replica).connect() as conn:
        if replica is engine:
            row = conn.execute(_PERSON_AND_SCOPE, {"pnr": pnr, "system": system}).first()
            scope = row.scope if row else None
        else:
            row = conn.execute(_PERSON, {"pnr": pnr}).first()
    if replica is not engine and row and system:
        with _single_statements(engine).connect() as conn:
            scope = conn.execute(_SCOPE, {"system": system}).scalar()
    found = Found(read_person(split_block(row.block)), row.production_date) if row else None
    return found, scope or ALL


def record(engine: Engine, caller: Caller, pnr: str, result: str, key: str | None,
           now: Callable[[], dt.datetime]) -> None:
    """One row of the look-up log."""
    row = {"looked_up_at": now(), "system": caller.system, "user_uuid": caller.user_uuid,
           "transport": caller.transport, "pnr_hash": pnr_hash(pnr, key),
           "result": result[:80]}
    if engine.dialect.name == "postgresql":
        with _single_statements(engine).connect() as conn:
            conn.execute(_RECORD, row)
        return
    with writing(engine) as s:  # SQLite: behind this process's other writers
        s.execute(_RECORD, row)


def look_up(engine: Engine, pnr: str, caller: Caller, *, key: str | None,
            now: Callable[[], dt.datetime], replica: Engine | None = None) -> Found:
    """The person, after recording the look-up; :class:`PersonNotFound` (recorded too)
    when the replica has no such number, or the caller's IT system has
    ``lookup_scope: subscribed`` and its subscriptions do not select the person
    (:mod:`cpr_abonnement.replica.scope`; the caller is told the same as for an unknown
    number, so a look-up cannot probe who exists). ``pnr`` must be valid
    (:class:`~cpr_abonnement.errors.InvalidPnr` otherwise, before anything is
    recorded: a malformed number names nobody). ``replica``: the replica's database
    when it has one of its own (:mod:`cpr_abonnement.replica.database`), where the log
    is kept too; ``engine`` is the filter database."""
    pnr = validate(pnr)
    pnr_hash(pnr, key)  # no key, no answer: refuse before reading anything
    replica = replica or engine
    found, scope = _find(engine, replica, pnr, caller.system)
    result = FOUND if found else NOT_FOUND
    if found and scope == SUBSCRIBED \
            and not selected_by(engine, caller.system, found.person, now()):
        found, result = None, OUT_OF_SCOPE
    record(replica, caller, pnr, result, key, now)
    if found is None:
        raise PersonNotFound(f"no person {mask(pnr)} in the CPR replica that this IT "
                             f"system may look up")
    return found


def lookups_of(engine: Engine, pnr: str, key: str | None, start: dt.datetime,
               end: dt.datetime) -> list[ReplicaLookup]:
    """Every look-up of ``pnr`` from ``start`` (inclusive) to ``end`` (exclusive), oldest
    first: the answer to a citizen's access request."""
    digest = pnr_hash(validate(pnr), key)
    with Session(engine) as s:
        return list(s.scalars(select(ReplicaLookup).where(
            ReplicaLookup.pnr_hash == digest, ReplicaLookup.looked_up_at >= start,
            ReplicaLookup.looked_up_at < end).order_by(ReplicaLookup.looked_up_at,
                                                       ReplicaLookup.id)))

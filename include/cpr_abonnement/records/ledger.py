"""The delivery ledger (product.md §4): one row per extract and subscriber, updated on every
attempt (counted when it starts), and, for pick-up, when the file became available, was
downloaded and was removed."""

from __future__ import annotations

import datetime as dt
import posixpath
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from sqlalchemy import (
    Boolean,
    Engine,
    Integer,
    Row,
    and_,
    bindparam,
    case,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from cpr_abonnement.errors import ExtractError
from cpr_abonnement.store.db import as_naive_utc
from cpr_abonnement.store.models import Delivery, ExtractRun, Subscriber

#: Ledger outcomes that mean the subscriber has the file.
DELIVERED_OUTCOMES = ("DELIVERED", "ALREADY_DELIVERED")
#: The outcome of an attempt that has started and not ended: still running, or its
#: process died (killed worker, zombie task) before it could record its end.
STARTED = "STARTED"
_STARTED_DETAIL = ("started; no end recorded yet (the attempt is running, or its process "
                   "died)")


@dataclass(frozen=True)
class LedgerEntry:
    subscriber_uuid: str
    file_name: str
    sha256: str
    persons: int
    records: int
    target: str
    attempts: int
    outcome: str
    detail: str
    delivered_at: dt.datetime | None
    #: Pick-up tracking (None for push, and until it happens).
    available_at: dt.datetime | None = None
    picked_up_at: dt.datetime | None = None
    removed_at: dt.datetime | None = None
    removed_by: str | None = None
    size_bytes: int | None = None
    #: Push only: the end of the service window the delivery last waited for (naive UTC).
    window_wait_until: dt.datetime | None = None


class Attempt(TypedDict):
    """Which file of which extract went to which subscriber, and where: the fields every
    ledger write of a push or pick-up attempt carries."""

    task_number: str
    production_date: dt.date
    subscriber_uuid: str
    file_name: str
    sha256: str
    persons: int
    records: int
    target: str


def start_delivery(engine: Engine, *, now: dt.datetime, **attempt: Unpack[Attempt]
                   ) -> LedgerEntry:
    """Count a delivery attempt as it starts, so one killed mid-way still counts.

    The outcome becomes :data:`STARTED` (not delivered) until :func:`finish_delivery`
    records the end. Once the subscriber has the file (``delivered_at`` set) the row
    keeps its delivered outcome: a later attempt never overwrites or deletes the file,
    so it cannot take the delivery back, even if it dies.
    """
    return _write(engine, attempt, outcome=STARTED, detail=_STARTED_DETAIL, now=now,
                  count=True)


def finish_delivery(engine: Engine, *, outcome: str, detail: str, now: dt.datetime,
                    size_bytes: int | None = None, **attempt: Unpack[Attempt]) -> LedgerEntry:
    """Record how the attempt counted by :func:`start_delivery` ended (not counted again);
    ``size_bytes`` of the data file once delivered (kept when a later call has none)."""
    return _write(engine, attempt, outcome=outcome, detail=detail, now=now, count=False,
                  size_bytes=size_bytes)


def record_delivery(engine: Engine, *, outcome: str, detail: str, now: dt.datetime,
                    **attempt: Unpack[Attempt]) -> LedgerEntry:
    """Record one whole attempt at once (count it and its outcome)."""
    return _write(engine, attempt, outcome=outcome, detail=detail, now=now, count=True)


def _write(engine: Engine, attempt: Attempt, *, outcome: str, detail: str, now: dt.datetime,
           count: bool, size_bytes: int | None = None) -> LedgerEntry:
    """Update the ledger row of (extract, subscriber), or insert it as attempt 1, in one
    statement (:data:`_UPSERT`).

    ``attempts`` is incremented in SQL, so attempts that overlap (a zombie task and its
    retry) are all counted, and two attempts inserting the first row at once end as one
    row counting both (the database's ``ON CONFLICT``).
    """
    _require_all(attempt)
    params = _upsert_params(attempt, outcome=outcome, detail=detail, now=now, count=count,
                            size_bytes=size_bytes)
    try:
        with engine.begin() as conn:
            row = conn.execute(_UPSERT[engine.dialect.name], params).one()
    except IntegrityError:
        with engine.connect() as conn:  # no extract run: its id came out NULL
            if conn.scalar(_RUN_ID, params) is not None:
                raise
        raise ExtractError(f"no processed extract for task {attempt['task_number']}, "
                           f"{attempt['production_date']}") from None
    return _entry(row)


def _upsert_params(attempt: Attempt, *, outcome: str, detail: str, now: dt.datetime,
                   count: bool, size_bytes: int | None) -> dict[str, Any]:
    return {**attempt, "target": attempt["target"][:800], "outcome": outcome,
            "detail": detail, "now": now, "size_bytes": size_bytes,
            "increment": 1 if count else 0, "started": outcome == STARTED,
            "delivered_at": now if outcome in DELIVERED_OUTCOMES else None}


def warm(engine: Engine) -> None:
    """Leave the ledger's write (:data:`_UPSERT`) compiled in ``engine``'s statement
    cache, keeping nothing: the attempt names no extract run, so the database refuses
    its row (``extract_run_id`` comes out NULL), after SQLAlchemy compiled the
    statement for exactly the parameters :func:`_write` binds. A task process forked
    after this (:func:`cpr_abonnement.airflow_side.connections.preload_task_engine`)
    inherits the compiled form: its first ledger write compiled it, a third of a
    delivery's database time."""
    nobody = Attempt(task_number="", production_date=dt.date(1, 1, 1), subscriber_uuid="",
                     file_name="", sha256="", persons=0, records=0, target="")
    params = _upsert_params(nobody, outcome=STARTED, detail="", now=dt.datetime(1, 1, 1),
                            count=True, size_bytes=None)
    with engine.connect() as conn:
        try:
            conn.execute(_UPSERT[engine.dialect.name], params)
        except IntegrityError:
            pass
        finally:
            conn.rollback()  # refused anyway; and were it not, never kept


def _require_all(attempt: Attempt) -> None:
    """Every field of :class:`Attempt` and no other, as a signature would insist."""
    given, wanted = set(attempt), set(Attempt.__annotations__)
    if given != wanted:
        raise TypeError(f"a ledger attempt needs {', '.join(sorted(wanted))}; missing: "
                        f"{', '.join(sorted(wanted - given)) or '-'}, unexpected: "
                        f"{', '.join(sorted(given - wanted)) or '-'}")


def _run_id(s: Session, task_number: str, production_date: dt.date) -> int:
    run_id = s.scalar(_RUN_ID, {"task_number": task_number,
                                "production_date": production_date})
    if run_id is None:
        raise ExtractError(f"no processed extract for task {task_number}, {production_date}")
    return run_id


_DELIVERY, _RUN = Delivery.__table__, ExtractRun.__table__
#: The extract run of the bound ``task_number`` and ``production_date``.
_RUN_ID = select(_RUN.c.id).where(_RUN.c.task_number == bindparam("task_number"),
                                  _RUN.c.production_date == bindparam("production_date"))


def _upsert(insert) -> Executable:
    """One attempt's write as a single ``INSERT … ON CONFLICT DO UPDATE … RETURNING``
    (``insert``: the dialect's, SQLite's and PostgreSQL's share the clause), built once
    per process: a delivery task is a process of its own, which otherwise compiled an
    ORM read, update, insert and read-back for each write. The bound parameters decide
    what the update keeps: ``increment`` counts the attempt (1) or not (0); while
    ``started``, a delivered row keeps its outcome and detail (see
    :func:`start_delivery`); ``delivered_at`` (None unless delivered) sets the first
    delivery time only; ``size_bytes`` None keeps the known size."""
    new = insert(_DELIVERY).values(
        extract_run_id=_RUN_ID.scalar_subquery(), attempts=1,
        **{c: bindparam(c) for c in ("subscriber_uuid", "file_name", "sha256", "persons",
                                     "records", "target", "outcome", "detail",
                                     "delivered_at", "size_bytes")},
        updated_at=bindparam("now"))
    old, ours = _DELIVERY.c, new.excluded
    keep_delivered = and_(bindparam("started", type_=Boolean), old.delivered_at.is_not(None))
    return new.on_conflict_do_update(
        index_elements=[old.extract_run_id, old.subscriber_uuid],
        set_={**{c: ours[c] for c in ("file_name", "sha256", "persons", "records",
                                       "target", "updated_at")},
              "attempts": old.attempts + bindparam("increment", type_=Integer),
              "outcome": case((keep_delivered, old.outcome), else_=ours.outcome),
              "detail": case((keep_delivered, old.detail), else_=ours.detail),
              "delivered_at": func.coalesce(old.delivered_at, ours.delivered_at),
              "size_bytes": func.coalesce(ours.size_bytes, old.size_bytes)},
    ).returning(*_DELIVERY.c)


_UPSERT = {"sqlite": _upsert(sqlite_insert), "postgresql": _upsert(postgresql_insert)}


#: The outcome of a delivery waiting for the subscriber's service window to end.
WAITING = "WAITING"


def record_wait(engine: Engine, *, task_number: str, production_date: dt.date,
                subscriber_uuid: str, file_name: str, sha256: str, persons: int,
                records: int, target: str, until: dt.datetime, detail: str,
                now: dt.datetime) -> None:
    """Record that a delivery waits for the service window ending at ``until`` (aware,
    or naive UTC): outcome :data:`WAITING`, not an attempt (a new row has 0 attempts).
    A row already delivered keeps its outcome; ``window_wait_until`` stays after
    delivery."""
    until = as_naive_utc(until)
    with Session(engine) as s, s.begin():
        run_id = _run_id(s, task_number, production_date)
        key = (Delivery.extract_run_id == run_id, Delivery.subscriber_uuid == subscriber_uuid)
        if s.scalar(select(Delivery.id).where(*key)) is None:
            s.add(Delivery(extract_run_id=run_id, subscriber_uuid=subscriber_uuid,
                           file_name=file_name, sha256=sha256, persons=persons,
                           records=records, target=target[:800], attempts=0,
                           outcome=WAITING, detail=detail, updated_at=now,
                           window_wait_until=until))
            return
        not_yet = Delivery.delivered_at.is_(None)
        s.execute(update(Delivery).where(*key).values(
            window_wait_until=until, updated_at=now,
            outcome=case((not_yet, WAITING), else_=Delivery.outcome),
            detail=case((not_yet, detail), else_=Delivery.detail))
            .execution_options(synchronize_session=False))


def entries(engine: Engine, task_number: str, production_date: dt.date) -> list[LedgerEntry]:
    with Session(engine) as s:
        rows = s.scalars(select(Delivery).join(ExtractRun)
                         .where(ExtractRun.task_number == task_number,
                                ExtractRun.production_date == production_date)
                         .order_by(Delivery.subscriber_uuid))
        return [_entry(r) for r in rows]


def entry(engine: Engine, task_number: str, production_date: dt.date, subscriber_uuid: str
          ) -> LedgerEntry | None:
    """The ledger row of one extract and subscriber, if any."""
    with engine.connect() as conn:
        row = conn.execute(_ENTRY, {"task_number": task_number,
                                    "production_date": production_date,
                                    "subscriber_uuid": subscriber_uuid}).one_or_none()
    return _entry(row) if row is not None else None


#: :func:`entry`'s query, built once (each delivery task asks it once, in a process of
#: its own).
_ENTRY = select(*_DELIVERY.c).where(
    _DELIVERY.c.extract_run_id == _RUN_ID.scalar_subquery(),
    _DELIVERY.c.subscriber_uuid == bindparam("subscriber_uuid"))


def collected(previous: LedgerEntry | None, sha256: str) -> bool:
    """Whether ``previous`` shows this very file (same SHA-256) delivered and since
    removed from ``IN/`` (by the subscriber or by retention): a re-run must not place
    it again unasked (the subscriber would fetch it twice)."""
    return (previous is not None and previous.delivered_at is not None
            and previous.sha256 == sha256 and previous.removed_at is not None)


def restart_pickup_tracking(engine: Engine, task_number: str, production_date: dt.date,
                            subscriber_uuid: str) -> None:
    """Forget when a file became available, was downloaded and removed: it has been
    placed again on request, and its tracking (late pick-up, retention) starts over.
    What was forgotten stays in the ledger's detail (see the caller)."""
    with Session(engine) as s, s.begin():
        run_id = _run_id(s, task_number, production_date)
        s.execute(update(Delivery).where(Delivery.extract_run_id == run_id,
                                         Delivery.subscriber_uuid == subscriber_uuid)
                  .values(available_at=None, picked_up_at=None, removed_at=None,
                          removed_by=None)
                  .execution_options(synchronize_session=False))


def _entry(row: Delivery | Row) -> LedgerEntry:
    return LedgerEntry(row.subscriber_uuid, row.file_name, row.sha256, row.persons, row.records,
                       row.target, row.attempts, row.outcome, row.detail, row.delivered_at,
                       row.available_at, row.picked_up_at, row.removed_at, row.removed_by,
                       row.size_bytes, row.window_wait_until)


#: Pick-up events and the ledger column each sets (the first time only).
PICKUP_EVENTS = {"available": "available_at", "downloaded": "picked_up_at",
                 "removed": "removed_at"}
#: Who removes a file from ``IN/``.
REMOVERS = ("subscriber", "retention")
_METADATA_SUFFIX = ".metadata"


def record_pickup_event(engine: Engine, *, account: str, file_name: str, event: str,
                        at: dt.datetime, by: str = "subscriber") -> bool:
    """Record a pick-up event of a delivered data file in its ledger row.

    ``event`` is ``available`` (both files are in ``IN/``), ``downloaded`` (a complete
    download) or ``removed`` (``by`` the subscriber or by retention). Each column keeps
    its first value: a second download does not move ``picked_up_at``. The row is found
    by the account's subscriber (whatever its mode now: a file picked up before a switch
    to push is still tracked) and the file name (``IN/<name>`` or ``<name>``; data files
    only, so a ``.metadata`` never matches). Returns False when no ledger row matches,
    for the caller to log.
    """
    column = PICKUP_EVENTS.get(event)
    if column is None:
        raise ValueError(f"unknown pick-up event {event!r}; one of {sorted(PICKUP_EVENTS)}")
    if by not in REMOVERS:
        raise ValueError(f"unknown remover {by!r}; one of {REMOVERS}")
    name = posixpath.basename(str(file_name))
    if name.endswith(_METADATA_SUFFIX):
        return False
    at = as_naive_utc(at)
    with Session(engine) as s, s.begin():
        row_id = s.scalar(
            select(Delivery.id).join(Subscriber, Subscriber.uuid == Delivery.subscriber_uuid)
            .where(Subscriber.pickup_account == str(account), Delivery.file_name == name)
            .order_by(Delivery.id.desc()).limit(1))
        if row_id is None:
            return False
        first = getattr(Delivery, column)
        changes: dict[str, Any] = {column: func.coalesce(first, at)}
        if event == "removed":
            changes["removed_by"] = case((first.is_(None), by), else_=Delivery.removed_by)
        s.execute(update(Delivery).where(Delivery.id == row_id).values(**changes)
                  .execution_options(synchronize_session=False))
    return True

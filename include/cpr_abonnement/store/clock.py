"""The filter database's clock and its filter lock.

Time comes from the database server, never from the process: filter validity periods
and snapshot instants (``extract_run.filters_as_of``) are written by different hosts
(the API, the Airflow workers), and a snapshot is reproducible only if both use one
clock. :func:`lock_filters` hands out that instant under the filter lock, so a snapshot
instant never falls between a change's stamp and its commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import (
    DateTime,
    bindparam,
    text,
    update,
)
from sqlalchemy.orm import Session

from cpr_abonnement.store.models import (
    FilterLock,
)

if TYPE_CHECKING:
    pass


def utcnow() -> dt.datetime:
    """This process's clock as naive UTC; for stamps no snapshot depends on."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


#: The database server's current time as naive UTC, per dialect. PostgreSQL's
#: ``CURRENT_TIMESTAMP`` is the transaction's start, which may be before the filter
#: lock was granted; ``clock_timestamp()`` is the moment of the call. SQLite has no
#: server: its clock is the host's, read by the SQLite library (millisecond steps).
NOW_SQL = {
    "postgresql": "clock_timestamp() AT TIME ZONE 'UTC'",
    "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')",
}
_DATABASE_NOW = {dialect: text(f"SELECT {now}") for dialect, now in NOW_SQL.items()}
_TICK = dt.timedelta(microseconds=1)
#: PostgreSQL: the filter lock is an advisory lock (this key) beside the row. A change
#: of one filter holds it shared, so such changes run side by side; a snapshot
#: instant and every other change hold it exclusively (see :func:`lock_filters`).
_FILTER_LOCK_KEY = 0x4350_5253_7562_0001  # "CPRSub" 1
_LOCK_SHARED_POSTGRESQL = text(f"SELECT pg_advisory_xact_lock_shared({_FILTER_LOCK_KEY})")
_LOCK_EXCLUSIVE_POSTGRESQL = text(f"SELECT pg_advisory_xact_lock({_FILTER_LOCK_KEY})")
#: The instant for a shared holder: the later of the server's clock and one microsecond
#: after the last exclusive holder's, read in a statement of its own after the lock is
#: granted (a statement sees what was committed when it started).
_STAMP_SHARED_POSTGRESQL = text(
    "SELECT GREATEST(clock_timestamp() AT TIME ZONE 'UTC', "
    "changed_at + interval '1 microsecond') FROM filter_lock WHERE id = 1")
#: The same for an exclusive holder, which records its instant for the next holders.
_STAMP_EXCLUSIVE_POSTGRESQL = text(
    "UPDATE filter_lock SET changed_at = GREATEST(clock_timestamp() AT TIME ZONE 'UTC', "
    "changed_at + interval '1 microsecond') WHERE id = 1 RETURNING changed_at")
# The statements every API call runs are built once, here and in :func:`filter_statements`:
# building a statement and its cache key costs more Python time than running it on
# SQLite, and under load each call's transaction holds the writer lock meanwhile.
_LOCK_TABLE = FilterLock.__table__
_TOUCH_LOCK = (update(_LOCK_TABLE).where(_LOCK_TABLE.c.id == 1)
               .values(changed_at=_LOCK_TABLE.c.changed_at).returning(_LOCK_TABLE.c.changed_at))
_STAMP_LOCK = (update(_LOCK_TABLE).where(_LOCK_TABLE.c.id == 1)
               .values(changed_at=bindparam("p_stamp", type_=DateTime)))


def database_now(session: Session) -> dt.datetime:
    """The database server's clock, naive UTC (the form every stored timestamp has)."""
    dialect = session.get_bind().dialect.name
    if dialect not in _DATABASE_NOW:
        raise NotImplementedError(f"no database clock for dialect {dialect!r}")
    return as_datetime(session.execute(_DATABASE_NOW[dialect]).scalar_one())


def as_datetime(value: str | dt.datetime) -> dt.datetime:
    """A time the database returned: SQLite's clock comes back as text."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def lock_filters(session: Session, clock: Callable[[], dt.datetime] | None = None,
                 *, shared: bool = False) -> dt.datetime:
    """Take the filter lock for the rest of the transaction; return the instant to stamp.

    The instant is the database server's time read *after* the lock is granted, and
    strictly after the instant the previous exclusive holder recorded in
    ``FilterLock.changed_at`` (a coarse or stepped-back clock can repeat a value): so a
    change made after a snapshot instant was chosen is always stamped after it.
    ``clock`` replaces the database clock with fixed instants for deterministic tests.

    ``shared``: the caller changes single filters only (``Add/Remove…Subscription``,
    the calls a reconciliation job makes by the ten thousand). On PostgreSQL such
    callers hold the lock together and wait only for an exclusive holder, and a
    snapshot instant (exclusive) waits until every shared holder has committed, so
    no change stamped before the instant can commit after it. Two shared holders may
    then add the same filter at once: the partial unique index decides, and the
    insert yields to it (``ON CONFLICT DO NOTHING``). SQLite has one writer at a time
    anyway, so there both modes are the exclusive one.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK_SHARED_POSTGRESQL if shared else _LOCK_EXCLUSIVE_POSTGRESQL)
        if clock is not None:
            return clock()
        stamp = _STAMP_SHARED_POSTGRESQL if shared else _STAMP_EXCLUSIVE_POSTGRESQL
        return session.execute(stamp).scalar_one()
    last = session.execute(_TOUCH_LOCK).scalar_one()
    if clock is not None:
        return clock()
    now = database_now(session)
    if last is not None and now <= last:
        now = last + _TICK
    session.execute(_STAMP_LOCK, {"p_stamp": now})
    return now

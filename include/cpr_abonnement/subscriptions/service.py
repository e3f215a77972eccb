"""The ten CPR Abonnement operations (product.md §2) plus bulk and as-of variants.

Every operation acts on the filters of one subscriber, named by its UserSystemUUID,
runs in one transaction, and leaves one audit row (caller, time, subscriber, operation,
arguments with PNRs masked, result), also when the input is rejected, the subscriber
is unknown or the caller was refused (``DENIED``). Whatever field a PNR was typed
into, the audit row holds it masked (:func:`cpr_abonnement.pnr.scrub`).

Time comes from the database server, never from the process: filter validity periods
and snapshot instants (``extract_run.filters_as_of``) are written by different hosts
(the API, the Airflow workers), and a snapshot is reproducible only if both use one
clock. :func:`lock_filters` hands out that instant.

Removal closes a filter's validity period instead of deleting it; adding a filter that
is already in force changes nothing (``ALREADY_EXISTED``). "Filters in force at T" is
``added_at <= T < removed_at`` (or no ``removed_at``).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid as uuidlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, and_, or_, select, text, update
from sqlalchemy.orm import Session

from cpr_abonnement import pnr as pnr_rules
from cpr_abonnement.errors import (
    CprAbonnementError,
    FilterInputError,
    UnknownSubscriber,
)
from cpr_abonnement.extract.dates import birth_from_pnr
from cpr_abonnement.subscriptions import rules
from cpr_abonnement.subscriptions.models import (
    AgeRangeFilter,
    AuditEntry,
    ChangeCodeFilter,
    FilterLock,
    MunicipalityFilter,
    PnrFilter,
    Subscriber,
)
from cpr_abonnement.subscriptions.rules import FilterGroup

T = TypeVar("T")
FILTER_MODELS = {
    FilterGroup.PNR: PnrFilter,
    FilterGroup.AGE_RANGE: AgeRangeFilter,
    FilterGroup.MUNICIPALITY_CODE: MunicipalityFilter,
    FilterGroup.CHANGE_CODE: ChangeCodeFilter,
}
#: How many masked PNRs a bulk call's audit row keeps as a sample.
AUDIT_SAMPLE = 5


class SubscriberExists(CprAbonnementError):
    """A subscriber with that UserSystemUUID is already registered."""


class InvalidSubscriber(FilterInputError):
    """Subscriber fields break a rule (UUID format, empty name)."""

    rule = "subscriber"


class Result(StrEnum):
    ADDED = "ADDED"
    ALREADY_EXISTED = "ALREADY_EXISTED"
    REMOVED = "REMOVED"
    NON_EXISTING_PNR = "NON_EXISTING_PNR"
    NON_EXISTING = "NON_EXISTING"


@dataclass(frozen=True)
class Outcome:
    result: Result
    warning: str | None = None


@dataclass(frozen=True)
class BulkOutcome:
    """Per-item results aligned with the input: a :class:`Result` or ``REJECTED: why``."""

    results: list[str]

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            key = "REJECTED" if r.startswith("REJECTED") else r
            out[key] = out.get(key, 0) + 1
        return out


@dataclass(frozen=True)
class FilterSet:
    """GetAllFilters: every filter of one subscriber in force at ``as_of``."""

    subscriber_uuid: str
    as_of: dt.datetime
    pnrs: list[str] = field(default_factory=list)
    age_ranges: list[tuple[int, int]] = field(default_factory=list)
    municipality_codes: list[str] = field(default_factory=list)
    change_codes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """No filters: a positive filter of nothing, so the subscriber receives no persons."""
        return not (self.pnrs or self.age_ranges or self.municipality_codes
                    or self.change_codes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        data["age_ranges"] = [{"start_age": a, "end_age": b} for a, b in self.age_ranges]
        data["receives_nothing"] = self.empty
        return data


@dataclass(frozen=True)
class SubscriberInfo:
    uuid: str
    name: str
    serves: str | None
    sftp_conn_id: str | None
    remote_dir: str
    active: bool
    created_at: dt.datetime
    disabled_at: dt.datetime | None

    @classmethod
    def of(cls, s: Subscriber) -> SubscriberInfo:
        return cls(s.uuid, s.name, s.serves, s.sftp_conn_id, s.remote_dir, s.active,
                   s.created_at, s.disabled_at)


def utcnow() -> dt.datetime:
    """This process's clock as naive UTC; for stamps no snapshot depends on."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


#: The database server's current time as naive UTC, per dialect. PostgreSQL's
#: ``CURRENT_TIMESTAMP`` is the transaction's start, which may be before the filter
#: lock was granted; ``clock_timestamp()`` is the moment of the call. SQLite has no
#: server: its clock is the host's, read by the SQLite library (millisecond steps).
_DATABASE_NOW = {
    "postgresql": "SELECT clock_timestamp() AT TIME ZONE 'UTC'",
    "sqlite": "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')",
}
_TICK = dt.timedelta(microseconds=1)


def database_now(session: Session) -> dt.datetime:
    """The database server's clock, naive UTC (the form every stored timestamp has)."""
    dialect = session.get_bind().dialect.name
    if dialect not in _DATABASE_NOW:
        raise NotImplementedError(f"no database clock for dialect {dialect!r}")
    value = session.execute(text(_DATABASE_NOW[dialect])).scalar_one()
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def as_naive_utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def lock_filters(session: Session, clock: Callable[[], dt.datetime] | None = None
                 ) -> dt.datetime:
    """Take the filter lock for the rest of the transaction; return the instant to stamp.

    The instant is the database server's time read *after* the lock is granted, and
    strictly after the instant the previous holder recorded in ``FilterLock.changed_at``
    (a coarse or stepped-back clock can repeat a value): so a change made after a
    snapshot instant was chosen is always stamped after it. ``clock`` replaces the
    database clock with fixed instants for deterministic tests.
    """
    session.execute(update(FilterLock).where(FilterLock.id == 1)
                    .values(changed_at=FilterLock.changed_at))
    if clock is not None:
        return clock()
    last = session.scalar(select(FilterLock.changed_at).where(FilterLock.id == 1))
    now = database_now(session)
    if last is not None and now <= last:
        now = last + _TICK
    session.execute(update(FilterLock).where(FilterLock.id == 1).values(changed_at=now))
    return now


def in_force(model, at: dt.datetime):
    """SQL predicate: the filter row's validity period contains ``at``."""
    return and_(model.added_at <= at, or_(model.removed_at.is_(None), model.removed_at > at))


def validate_uuid(value: str) -> str:
    try:
        return str(uuidlib.UUID(str(value)))
    except ValueError:
        raise InvalidSubscriber(f"UserSystemUUID {rules.shown(value)} is not a UUID") from None


class SubscriptionService:
    """The operations, bound to a database and to the caller recorded in the audit.

    ``clock`` is for tests that need fixed instants; left out, every stamp comes from
    the database server (see :func:`lock_filters`).
    """

    def __init__(self, engine: Engine, *, caller: str,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.engine = engine
        self.caller = caller
        self.clock = clock

    # -- plumbing ------------------------------------------------------------------
    def _now(self, session: Session) -> dt.datetime:
        """The time for a row written without the filter lock (audit of a refusal)."""
        return self.clock() if self.clock else database_now(session)

    def _audit(self, session: Session, system: str | None, operation: str,
               arguments: dict[str, Any], result: str, at: dt.datetime) -> None:
        """One audit row; PNR-shaped text is masked in every free-text column."""
        session.add(AuditEntry(
            at=at, caller=self.caller, subscriber_uuid=system, operation=operation,
            arguments=pnr_rules.scrub(json.dumps(arguments, ensure_ascii=False, default=str)),
            result=pnr_rules.scrub(result)[:200]))

    def record_denied(self, system: str | None, operation: str) -> None:
        """Audit a call the caller was not allowed to make (another system's filters,
        an administrator's operation), so refused attempts leave a trace."""
        with Session(self.engine) as s, s.begin():
            self._audit(s, system, operation, {}, "DENIED", self._now(s))

    def _run(self, system: str, operation: str, arguments: dict[str, Any],
             validate: Callable[[], Any],
             apply: Callable[[Session, Subscriber, Any, dt.datetime], T],
             describe: Callable[[T], str] = str) -> T:
        """Validate, then apply in one transaction, auditing every outcome."""
        try:
            value = validate()
        except FilterInputError as exc:
            with Session(self.engine) as s, s.begin():
                self._audit(s, system, operation, arguments, f"REJECTED: {exc.rule}: {exc}",
                            self._now(s))
            raise
        with Session(self.engine) as s, s.begin():
            now = lock_filters(s, self.clock)  # after the lock: see FilterLock
            sub = s.scalar(select(Subscriber).where(Subscriber.uuid == system))
            if sub is None:
                self._audit(s, system, operation, arguments, "UNKNOWN_SUBSCRIBER", now)
            else:
                result = apply(s, sub, value, now)
                self._audit(s, system, operation, arguments, describe(result), now)
                return result
        raise UnknownSubscriber(f"no subscriber with UserSystemUUID {system}")

    @staticmethod
    def _current(s: Session, model, sub: Subscriber, values: dict[str, Any]):
        return s.scalar(select(model).where(
            model.subscriber_id == sub.id, model.removed_at.is_(None),
            *[getattr(model, k) == v for k, v in values.items()]))

    def _add(self, model, values_of: Callable[[Any], dict[str, Any]],
             warn: Callable[[Any], str | None] = lambda _: None):
        def apply(s: Session, sub: Subscriber, value: Any, now: dt.datetime) -> Outcome:
            values = values_of(value)
            if self._current(s, model, sub, values) is not None:
                return Outcome(Result.ALREADY_EXISTED, warn(value))
            s.add(model(subscriber_id=sub.id, added_at=now, **values))
            return Outcome(Result.ADDED, warn(value))
        return apply

    def _remove(self, model, values_of: Callable[[Any], dict[str, Any]], missing: Result):
        def apply(s: Session, sub: Subscriber, value: Any, now: dt.datetime) -> Outcome:
            row = self._current(s, model, sub, values_of(value))
            if row is None:
                return Outcome(missing)
            row.removed_at = now
            return Outcome(Result.REMOVED)
        return apply

    @staticmethod
    def _describe(outcome: Outcome) -> str:
        return outcome.result.value + (f" (warning: {outcome.warning})" if outcome.warning
                                       else "")

    # -- the ten operations --------------------------------------------------------
    def add_pnr(self, system: str, pnr: str) -> Outcome:
        return self._run(system, "AddPNRSubscription", {"pnr": pnr_rules.mask(str(pnr))},
                         lambda: rules.pnr(pnr),
                         self._add(PnrFilter, lambda v: {"pnr": int(v)}), self._describe)

    def remove_pnr(self, system: str, pnr: str) -> Outcome:
        return self._run(system, "RemovePNRSubscription", {"pnr": pnr_rules.mask(str(pnr))},
                         lambda: rules.pnr(pnr),
                         self._remove(PnrFilter, lambda v: {"pnr": int(v)},
                                      Result.NON_EXISTING_PNR), self._describe)

    def add_age_range(self, system: str, start_age: int, end_age: int) -> Outcome:
        return self._run(system, "AddAgeRangeSubscription",
                         {"start_age": start_age, "end_age": end_age},
                         lambda: rules.age_range(start_age, end_age),
                         self._add(AgeRangeFilter,
                                   lambda v: {"start_age": v[0], "end_age": v[1]}),
                         self._describe)

    def remove_age_range(self, system: str, start_age: int, end_age: int) -> Outcome:
        return self._run(system, "RemoveAgeRangeSubscription",
                         {"start_age": start_age, "end_age": end_age},
                         lambda: rules.age_range(start_age, end_age),
                         self._remove(AgeRangeFilter,
                                      lambda v: {"start_age": v[0], "end_age": v[1]},
                                      Result.NON_EXISTING), self._describe)

    def add_municipality(self, system: str, code: str | int) -> Outcome:
        return self._run(system, "AddMunicipalityCodeSubscription", {"code": str(code)},
                         lambda: rules.municipality_code(code),
                         self._add(MunicipalityFilter, lambda v: {"code": v}),
                         self._describe)

    def remove_municipality(self, system: str, code: str | int) -> Outcome:
        return self._run(system, "RemoveMunicipalityCodeSubscription", {"code": str(code)},
                         lambda: rules.municipality_code(code),
                         self._remove(MunicipalityFilter, lambda v: {"code": v},
                                      Result.NON_EXISTING), self._describe)

    def add_change_code(self, system: str, code: str) -> Outcome:
        return self._run(system, "AddChangeCodeSubscription", {"code": str(code)},
                         lambda: rules.event_code(code),
                         self._add(ChangeCodeFilter, lambda v: {"code": v},
                                   rules.event_code_warning), self._describe)

    def remove_change_code(self, system: str, code: str) -> Outcome:
        return self._run(system, "RemoveChangeCodeSubscription", {"code": str(code)},
                         lambda: rules.event_code(code),
                         self._remove(ChangeCodeFilter, lambda v: {"code": v},
                                      Result.NON_EXISTING), self._describe)

    def remove_all(self, system: str, group: str) -> int:
        def apply(s: Session, sub: Subscriber, g: FilterGroup, now: dt.datetime) -> int:
            model = FILTER_MODELS[g]
            done = s.execute(update(model).where(model.subscriber_id == sub.id,
                                                 model.removed_at.is_(None))
                             .values(removed_at=now))
            return int(done.rowcount or 0)
        return self._run(system, "RemoveAll", {"group": str(group)},
                         lambda: rules.filter_group(group), apply,
                         lambda n: f"REMOVED {n}")

    def get_all_filters(self, system: str, as_of: dt.datetime | None = None) -> FilterSet:
        def apply(s: Session, sub: Subscriber, at: dt.datetime, now: dt.datetime) -> FilterSet:
            at = at or now

            def rows(model, *cols):
                return s.execute(select(*cols).where(model.subscriber_id == sub.id,
                                                     in_force(model, at))
                                 .order_by(*cols)).all()
            return FilterSet(
                subscriber_uuid=sub.uuid,
                as_of=at,
                pnrs=[f"{r[0]:010d}" for r in rows(PnrFilter, PnrFilter.pnr)],
                age_ranges=[(r[0], r[1]) for r in rows(
                    AgeRangeFilter, AgeRangeFilter.start_age, AgeRangeFilter.end_age)],
                municipality_codes=[r[0] for r in rows(MunicipalityFilter,
                                                       MunicipalityFilter.code)],
                change_codes=[r[0] for r in rows(ChangeCodeFilter, ChangeCodeFilter.code)],
            )
        at = as_naive_utc(as_of) if as_of else None
        return self._run(
            system, "GetAllFilters", {"as_of": at.isoformat() if at else None},
            lambda: at, apply,
            lambda f: (f"OK: {len(f.pnrs)} PNR, {len(f.age_ranges)} age range, "
                       f"{len(f.municipality_codes)} municipality, {len(f.change_codes)} "
                       f"change-code filters" + (" (receives nothing)" if f.empty else "")))

    # -- bulk PNR variants ---------------------------------------------------------
    def add_pnrs(self, system: str, pnrs: Sequence[str]) -> BulkOutcome:
        """Add many PNRs in one transaction; invalid items are rejected individually."""
        return self._bulk(system, "AddPNRSubscriptions", pnrs, adding=True)

    def remove_pnrs(self, system: str, pnrs: Sequence[str]) -> BulkOutcome:
        return self._bulk(system, "RemovePNRSubscriptions", pnrs, adding=False)

    def _bulk(self, system: str, operation: str, pnrs: Sequence[str], *, adding: bool
              ) -> BulkOutcome:
        values, ok = parse_pnrs(pnrs)
        sample = [pnr_rules.mask(str(p)) for p in pnrs[:AUDIT_SAMPLE]]

        def apply(s: Session, sub: Subscriber, _: None, now: dt.datetime) -> BulkOutcome:
            current = np.fromiter(
                s.scalars(select(PnrFilter.pnr).where(PnrFilter.subscriber_id == sub.id,
                                                      PnrFilter.removed_at.is_(None))),
                dtype=np.int64)
            results = np.full(len(values), "REJECTED: not 10 digits forming a real date "
                              "(DDMMYY)", dtype=object)
            candidates = np.flatnonzero(ok)
            uniq, first = np.unique(values[candidates], return_index=True)
            present = np.isin(uniq, current)
            if adding:
                results[candidates] = Result.ALREADY_EXISTED.value
                results[candidates[first[~present]]] = Result.ADDED.value
                _insert_pnrs(s, sub.id, uniq[~present], now)
            else:
                results[candidates] = Result.NON_EXISTING_PNR.value
                results[candidates[first[present]]] = Result.REMOVED.value
                _close_pnrs(s, sub.id, uniq[present], now)
            return BulkOutcome(results.tolist())

        return self._run(system, operation, {"count": len(pnrs), "sample": sample},
                         lambda: None, apply,
                         lambda b: "OK: " + json.dumps(b.counts, sort_keys=True))

    # -- subscribers ---------------------------------------------------------------
    def add_subscriber(self, uuid: str, name: str, *, serves: str | None = None,
                       sftp_conn_id: str | None = None, remote_dir: str = ".") -> SubscriberInfo:
        uuid = validate_uuid(uuid)
        if not name.strip():
            raise InvalidSubscriber("a subscriber needs a name")
        remote_dir = rules.remote_dir(remote_dir)
        with Session(self.engine) as s, s.begin():
            now = lock_filters(s, self.clock)
            if s.scalar(select(Subscriber.id).where(Subscriber.uuid == uuid)) is not None:
                raise SubscriberExists(f"subscriber {uuid} already exists")
            sub = Subscriber(uuid=uuid, name=name.strip(), serves=serves,
                             sftp_conn_id=sftp_conn_id, remote_dir=remote_dir, active=True,
                             created_at=now)
            s.add(sub)
            self._audit(s, uuid, "AddSubscriber",
                        {"name": name, "serves": serves, "sftp_conn_id": sftp_conn_id,
                         "remote_dir": remote_dir}, "ADDED", now)
            s.flush()
            return SubscriberInfo.of(sub)

    def set_active(self, uuid: str, active: bool) -> SubscriberInfo:
        with Session(self.engine) as s, s.begin():
            now = lock_filters(s, self.clock)
            sub = s.scalar(select(Subscriber).where(Subscriber.uuid == uuid))
            if sub is None:
                self._audit(s, uuid, "DisableSubscriber" if not active else "EnableSubscriber",
                            {}, "UNKNOWN_SUBSCRIBER", now)
            else:
                changed = sub.active != active
                sub.active, sub.disabled_at = active, (None if active else now)
                self._audit(s, uuid, "EnableSubscriber" if active else "DisableSubscriber",
                            {}, "CHANGED" if changed else "UNCHANGED", now)
                return SubscriberInfo.of(sub)
        raise UnknownSubscriber(f"no subscriber with UserSystemUUID {uuid}")

    def subscribers(self, *, active_only: bool = False) -> list[SubscriberInfo]:
        with Session(self.engine) as s:
            q = select(Subscriber).order_by(Subscriber.name, Subscriber.uuid)
            if active_only:
                q = q.where(Subscriber.active.is_(True))
            return [SubscriberInfo.of(sub) for sub in s.scalars(q)]

    def audit_trail(self, system: str | None = None) -> list[AuditEntry]:
        with Session(self.engine) as s:
            q = select(AuditEntry).order_by(AuditEntry.id)
            if system:
                q = q.where(AuditEntry.subscriber_uuid == system)
            return list(s.scalars(q))


def parse_pnrs(pnrs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised PNR rule for bulk input: int64 values and which items are valid."""
    compact = [pnr_rules.compact(str(p)) for p in pnrs]
    ok = np.fromiter((len(c) == 10 and c.isascii() and c.isdigit() for c in compact), dtype=bool,
                     count=len(compact))
    values = np.fromiter((int(c) if good else 0 for c, good in zip(compact, ok, strict=True)),
                         dtype=np.int64, count=len(compact))
    ok &= birth_from_pnr(values) > 0
    return values, ok


def _stored(session: Session, when: dt.datetime) -> Any:
    """``when`` as the driver stores it (SQLite keeps DateTime as a fixed-format string)."""
    process = PnrFilter.__table__.c.added_at.type.bind_processor(session.get_bind().dialect)
    return process(when) if process else when


def _insert_pnrs(s: Session, subscriber_id: int, pnrs: np.ndarray, now: dt.datetime) -> None:
    if not len(pnrs):
        return
    conn = s.connection()
    stamp = _stored(s, now)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(
            "COPY filter_pnr (subscriber_id, pnr, added_at) FROM STDIN"
        ) as copy:
            for p in pnrs.tolist():
                copy.write_row((subscriber_id, p, stamp))
        return
    conn.exec_driver_sql(
        "INSERT INTO filter_pnr (subscriber_id, pnr, added_at) VALUES (?, ?, ?)",
        [(subscriber_id, p, stamp) for p in pnrs.tolist()],
    )


def _close_pnrs(s: Session, subscriber_id: int, pnrs: np.ndarray, now: dt.datetime) -> None:
    if not len(pnrs):
        return
    conn = s.connection()
    marker = "%s" if conn.dialect.name == "postgresql" else "?"
    conn.exec_driver_sql(
        f"UPDATE filter_pnr SET removed_at = {marker} WHERE subscriber_id = {marker} "
        f"AND pnr = {marker} AND removed_at IS NULL",
        [(_stored(s, now), subscriber_id, p) for p in pnrs.tolist()],
    )

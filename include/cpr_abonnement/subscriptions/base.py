"""What every subscription operation shares: one transaction per call under the filter
lock, one audit row per call (also refused ones), the subscriber looked up once, and the
registration of parsed credentials (certificates, SSH keys) with their owner check."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Engine,
    select,
    update,
)
from sqlalchemy.orm import Session

from cpr_abonnement import cpr_number as pnr_rules
from cpr_abonnement.errors import (
    FilterInputError,
    RegisteredToAnotherSystem,
    UnknownSubscriber,
)
from cpr_abonnement.filters.base import FilterType
from cpr_abonnement.identities import certificates
from cpr_abonnement.store.clock import as_datetime, database_now, lock_filters
from cpr_abonnement.store.db import writing
from cpr_abonnement.store.models import (
    Subscriber,
)
from cpr_abonnement.subscriptions.outcomes import NO_TRAIL, CallTrail, Outcome, Registration, Result
from cpr_abonnement.subscriptions.statements import (
    AUDIT_INSERT,
    SUBSCRIBER_REF,
    SUBSCRIBER_REF_AND_NOW,
    filter_parameters,
    filter_statements,
)

T = TypeVar("T")
#: How many masked PNRs a bulk call's audit row keeps as a sample.
AUDIT_SAMPLE = 5


if TYPE_CHECKING:
    pass


class ServiceBase:
    """The service's plumbing, bound to a database and to the caller recorded in the
    audit (``clock`` for tests that need fixed instants; left out, every stamp comes
    from the database server, :func:`~cpr_abonnement.store.clock.lock_filters`)."""

    def __init__(self, engine: Engine, *, caller: str,
                 clock: Callable[[], dt.datetime] | None = None,
                 trail: CallTrail = NO_TRAIL) -> None:
        self.engine = engine
        self.caller = caller
        self.clock = clock
        self.trail = trail

    # -- plumbing ------------------------------------------------------------------
    def _now(self, session: Session) -> dt.datetime:
        """The time for a row written without the filter lock (audit of a refusal)."""
        return self.clock() if self.clock else database_now(session)

    def _audit(self, session: Session, system: str | None, operation: str,
               arguments: dict[str, Any], result: str, at: dt.datetime) -> None:
        """One audit row; PNR-shaped text is masked in every free-text column."""
        trail = self.trail
        session.connection().execute(AUDIT_INSERT, {
            "at": at, "caller": pnr_rules.scrub(self.caller)[:200],
            # A refused call's system is whatever the caller typed (a PNR, say).
            "subscriber_uuid": pnr_rules.scrub(system)[:36] if system else None,
            "operation": operation,
            "arguments": pnr_rules.scrub(json.dumps(arguments, ensure_ascii=False,
                                                    default=str)),
            "result": pnr_rules.scrub(result)[:200], "transport": trail.transport,
            "certificate_sha256": trail.certificate_sha256,
            "call_id": pnr_rules.scrub(trail.call_id)[:255] if trail.call_id else None})

    def record_denied(self, system: str | None, operation: str, check: str | None = None
                      ) -> None:
        """Audit a call the caller was not allowed to make (``DENIED: <check>``), so
        refused attempts leave a trace."""
        with writing(self.engine) as s:
            self._audit(s, system, operation, {}, f"DENIED: {check}" if check else "DENIED",
                        self._now(s))

    def _run(self, system: str, operation: str, arguments: dict[str, Any],
             validate: Callable[[], Any],
             apply: Callable[[Session, Subscriber, Any, dt.datetime], T],
             describe: Callable[[T], str] = str, *, locked: bool = True,
             shared: bool = False, whole: bool = True) -> T:
        """Validate, then apply in one transaction, auditing every outcome. A read
        (``locked=False``) is stamped with the database's time without the filter
        lock, so it never waits for, nor holds up, the changes of other IT systems.
        ``whole=False``: ``apply`` needs only the subscriber's ``id`` and ``uuid`` (a
        row, not the ORM object), looked up before the filter lock is taken, so the
        lock is held one statement less (the filter operations every API call makes).
        ``shared``: ``apply`` changes single filters only (see :func:`lock_filters`)."""
        try:
            value = validate()
        except FilterInputError as exc:
            with writing(self.engine) as s:
                self._audit(s, system, operation, arguments, f"REJECTED: {exc.rule}: {exc}",
                            self._now(s))
            raise
        with writing(self.engine) as s:
            sub, now = self._subscriber_and_now(s, system, locked, shared, whole)
            if whole:
                sub = s.scalar(select(Subscriber).where(Subscriber.uuid == system))
            if sub is None:
                self._audit(s, system, operation, arguments, "UNKNOWN_SUBSCRIBER", now)
            else:
                result = apply(s, sub, value, now)
                self._audit(s, system, operation, arguments, describe(result), now)
                return result
        raise UnknownSubscriber(f"no subscriber with UserSystemUUID {system}")

    def _subscriber_and_now(self, s: Session, system: str, locked: bool, shared: bool,
                            whole: bool) -> tuple[Any, dt.datetime]:
        """The subscriber's row (``whole``: none yet, the ORM object comes later) and the
        instant to stamp: under the filter lock, or for a read the database's time,
        asked for in the same statement as the row (a round trip less per call)."""
        if not (whole or locked or self.clock):
            row = s.execute(SUBSCRIBER_REF_AND_NOW[s.get_bind().dialect.name],
                            {"p_system": system}).first()
            return (row, as_datetime(row.now)) if row else (None, self._now(s))
        sub = None if whole else s.execute(SUBSCRIBER_REF, {"p_system": system}).first()
        now = lock_filters(s, self.clock, shared=shared) if locked else self._now(s)  # FilterLock
        return sub, now

    def _add(self, ftype: FilterType):
        def apply(s: Session, sub: Any, values: dict[str, Any], now: dt.datetime
                  ) -> Outcome:
            connection = s.connection()
            added = connection.execute(filter_statements(ftype, connection.dialect.name).add,
                                           filter_parameters(sub, values, now)).first()
            return Outcome(Result.ALREADY_EXISTED if added is None else Result.ADDED,
                           ftype.warning(values))
        return apply

    def _remove(self, ftype: FilterType):
        def apply(s: Session, sub: Any, values: dict[str, Any], now: dt.datetime
                  ) -> Outcome:
            connection = s.connection()
            done = connection.execute(filter_statements(ftype, connection.dialect.name).remove,
                                          filter_parameters(sub, values, now))
            return Outcome(Result.REMOVED if done.rowcount else Result(ftype.missing))
        return apply

    @staticmethod
    def _describe(outcome: Outcome) -> str:
        return outcome.result.value + (f" (warning: {outcome.warning})" if outcome.warning
                                       else "")

    def _registration(self, what: str, system: str, operation: str,
                      arguments: dict[str, Any], validate: Callable[[], Any],
                      apply: Callable[[Session, Subscriber, Any, dt.datetime], Registration]
                      ) -> Registration:
        """Audited like a filter operation; one held by another system is refused
        (audited ``REFUSED: registered for IT system <uuid>``, then raised)."""
        def describe(r: Registration) -> str:
            return (f"REFUSED: registered for IT system {r.owner}" if r.owner
                    else r.result.value)
        try:
            done = self._run(system, operation, arguments, validate, apply, describe)
        finally:
            certificates.forget_registrations()  # SF6002 callers: see certificates
        if done.owner:
            raise RegisteredToAnotherSystem(
                f"this {what} is already registered for IT system {done.owner}; remove it "
                "there first", what=what, owner=done.owner)
        return done

    @staticmethod
    def _owner(s: Session, model, key, value: str) -> tuple[int, str] | None:
        """(subscriber id, UUID) of the system whose current row has ``key == value``."""
        row = s.execute(select(Subscriber.id, Subscriber.uuid)
                        .join(model, model.subscriber_id == Subscriber.id)
                        .where(key == value, model.removed_at.is_(None))).first()
        return (row[0], row[1]) if row else None

    def _add_parsed(self, what: str, system: str, operation: str, parse: Callable[[], T],
                    audited: Callable[[T], dict[str, Any]], key: Any,
                    store: Callable[[Session, Subscriber, T, dt.datetime], None]
                    ) -> Registration:
        """Register a credential that is parsed before the transaction (a certificate,
        an SSH key): refused input is audited as ``REJECTED`` with no arguments (it may
        be anything), one already held is ``ALREADY_EXISTED`` (refused if another system
        holds it). ``key`` is the table's column that identifies it, named as the parsed
        value's attribute."""
        def apply(s: Session, sub: Subscriber, item: T, now: dt.datetime) -> Registration:
            owner = self._owner(s, key.class_, key, getattr(item, key.key))
            if owner is not None:
                return Registration(Result.ALREADY_EXISTED,
                                    None if owner[0] == sub.id else owner[1])
            store(s, sub, item, now)
            return Registration(Result.ADDED)
        try:
            item = parse()
        except FilterInputError as exc:
            refused = exc

            def validate() -> T:
                raise refused  # audited as REJECTED by _run
            return self._registration(what, system, operation, {}, validate, apply)
        return self._registration(what, system, operation, audited(item), lambda: item, apply)

    def _remove_registered(self, what: str, system: str, operation: str, key: Any,
                           arguments: dict[str, Any], normalise: Callable[[], str]
                           ) -> Registration:
        """Close ``system``'s current row whose ``key`` column is the normalised value;
        ``NON_EXISTING`` if there is none."""
        model = key.class_

        def apply(s: Session, sub: Subscriber, value: str, now: dt.datetime) -> Registration:
            done = s.execute(update(model).where(
                model.subscriber_id == sub.id, key == value,
                model.removed_at.is_(None)).values(removed_at=now))
            return Registration(Result.REMOVED if done.rowcount else Result.NON_EXISTING)
        return self._registration(what, system, operation, arguments, normalise, apply)

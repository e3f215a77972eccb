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
import logging
import uuid as uuidlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Integer,
    SmallInteger,
    String,
    and_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cpr_abonnement import filters
from cpr_abonnement import pnr as pnr_rules
from cpr_abonnement.errors import (
    FilterInputError,
    InvalidDeliveryMode,
    InvalidServiceAgreement,
    InvalidSubscriber,
    RegisteredToAnotherSystem,
    SubscriberExists,
    UnknownSubscriber,
)
from cpr_abonnement.filters import AGE_RANGE, CHANGE_CODE, MUNICIPALITY_CODE, PNR
from cpr_abonnement.filters.base import FilterType, in_force
from cpr_abonnement.identities import certificates, credentials
from cpr_abonnement.identities.certificates import (
    UNCHECKED_ISSUER,
    CertificateInfo,
    configured_client_ca,
    normalise_fingerprint,
    parse_certificate,
)
from cpr_abonnement.identities.ssh_keys import (
    SshKeyInfo,
    parse_public_key,
)
from cpr_abonnement.identities.ssh_keys import (
    normalise_fingerprint as normalise_ssh_fingerprint,
)
from cpr_abonnement.pickup.accounts import PICKUP, PUSH, validate_account_name, validate_mode
from cpr_abonnement.store.db import as_naive_utc, writing
from cpr_abonnement.store.models import (
    AuditEntry,
    Certificate,
    DeliverySetting,
    FilterLock,
    ServiceAgreement,
    SshKey,
    Subscriber,
)
from cpr_abonnement.subscriptions import rules
from cpr_abonnement.subscriptions.recipient import Recipient

if TYPE_CHECKING:
    from cpr_abonnement.onboarding.importing import ImportPlan
    from cpr_abonnement.onboarding.registration import Document

T = TypeVar("T")
#: How many masked PNRs a bulk call's audit row keeps as a sample.
AUDIT_SAMPLE = 5

log = logging.getLogger(__name__)


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
    """GetAllFilters: every filter of one subscriber in force at ``as_of``.

    ``listings`` maps each type's GetAllFilters field to its items, in registry order;
    ``fs.pnrs``, ``fs.age_ranges`` ... read one.
    """

    subscriber_uuid: str
    as_of: dt.datetime
    listings: dict[str, list[Any]]

    def __getattr__(self, name: str) -> list[Any]:
        try:
            return self.__dict__["listings"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def empty(self) -> bool:
        """No filters: a positive filter of nothing, so the subscriber receives no persons."""
        return not any(self.listings.values())

    def to_dict(self) -> dict[str, Any]:
        return {"subscriber_uuid": self.subscriber_uuid, "as_of": self.as_of.isoformat(),
                **{t.listing: t.as_listing(self.listings[t.listing]) for t in filters.TYPES},
                "receives_nothing": self.empty}


@dataclass(frozen=True)
class RegisteredSshKey:
    """A current SSH key of a subscriber, as shown to operators (never the key itself)."""

    fingerprint: str
    key_type: str
    bits: int
    comment: str
    added_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class SubscriberDetails(Recipient):
    """One subscriber as operators see it (CLI, admin REST API): the :class:`Recipient`
    every other part of the code sees, plus its state and credentials.

    Apart from ``Recipient`` because these fields cost three queries per subscriber
    and nothing in a daily run reads them; as a ``Recipient`` it can be given wherever
    one is wanted (e.g. :func:`cpr_abonnement.delivery.target_of`).
    """

    serves: str | None
    active: bool
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    #: Current client certificates (SF6002 over mutual TLS), by expiry.
    certificates: tuple[CertificateInfo, ...] = ()
    #: Current ServiceAgreementUUIDs.
    service_agreements: tuple[str, ...] = ()
    #: Current SSH keys of the pick-up account, oldest first.
    ssh_keys: tuple[RegisteredSshKey, ...] = ()

    @classmethod
    def of(cls, session: Session, s: Subscriber) -> SubscriberDetails:
        certs = session.scalars(select(Certificate).where(
            Certificate.subscriber_id == s.id, Certificate.removed_at.is_(None))
            .order_by(Certificate.not_after, Certificate.sha256))
        agreements = session.scalars(select(ServiceAgreement.uuid).where(
            ServiceAgreement.subscriber_id == s.id, ServiceAgreement.removed_at.is_(None))
            .order_by(ServiceAgreement.uuid))
        keys = session.scalars(select(SshKey).where(
            SshKey.subscriber_id == s.id, SshKey.removed_at.is_(None))
            .order_by(SshKey.added_at, SshKey.id))
        return cls(
            uuid=s.uuid, name=s.name, sftp_conn_id=s.sftp_conn_id, remote_dir=s.remote_dir,
            delivery_mode=s.delivery_mode, pickup_account=s.pickup_account,
            serves=s.serves, active=s.active, created_at=s.created_at,
            disabled_at=s.disabled_at,
            certificates=tuple(CertificateInfo(c.sha256, c.subject, c.not_after)
                               for c in certs),
            service_agreements=tuple(agreements),
            ssh_keys=tuple(RegisteredSshKey(k.fingerprint, k.key_type, k.bits, k.comment,
                                            k.added_at) for k in keys))

    def to_json(self, key: Callable[[str], str] = str) -> dict[str, Any]:
        """Every field as JSON values, in the order operators' scripts know; ``key``
        spells the names (``subscriber list --json`` as they are, the REST API in
        camelCase)."""
        def named(**fields: Any) -> dict[str, Any]:
            return {key(k): v for k, v in fields.items()}

        return named(
            uuid=self.uuid, name=self.name, serves=self.serves,
            sftp_conn_id=self.sftp_conn_id, remote_dir=self.remote_dir, active=self.active,
            created_at=self.created_at.isoformat(),
            disabled_at=self.disabled_at.isoformat() if self.disabled_at else None,
            certificates=[named(sha256=c.sha256, subject=c.subject,
                                not_after=c.not_after.isoformat())
                          for c in self.certificates],
            service_agreements=list(self.service_agreements),
            delivery_mode=self.delivery_mode, pickup_account=self.pickup_account,
            ssh_keys=[named(fingerprint=k.fingerprint, type=k.key_type, bits=k.bits,
                            comment=k.comment, added_at=k.added_at.isoformat())
                      for k in self.ssh_keys])


@dataclass(frozen=True)
class CallTrail:
    """How a call came, as every audit row it writes records it: the transport
    (``rest``, ``soap``, ``cli``), the client certificate's SHA-256 fingerprint and
    SF6002's ``CallersServiceCallIdentifier`` (SOAP)."""

    transport: str | None = None
    certificate_sha256: str | None = None
    call_id: str | None = None


@dataclass(frozen=True)
class Registration:
    """The result of registering or removing a certificate or service agreement."""

    result: Result
    #: The other IT system that already holds it (result not applied), if any.
    owner: str | None = None
    #: Something the operator should know although it was done.
    warning: str | None = None


@dataclass(frozen=True)
class SubscriberUpdate:
    """What :meth:`SubscriptionService.update_subscriber` did: the subscriber as it now
    is and the fields that changed (none: it already was so)."""

    info: SubscriberDetails
    changed: list[str]

    def describe(self) -> str:
        return f"UPDATED: {', '.join(self.changed)}" if self.changed else "UNCHANGED"


def utcnow() -> dt.datetime:
    """This process's clock as naive UTC; for stamps no snapshot depends on."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


#: The database server's current time as naive UTC, per dialect. PostgreSQL's
#: ``CURRENT_TIMESTAMP`` is the transaction's start, which may be before the filter
#: lock was granted; ``clock_timestamp()`` is the moment of the call. SQLite has no
#: server: its clock is the host's, read by the SQLite library (millisecond steps).
_NOW = {
    "postgresql": "clock_timestamp() AT TIME ZONE 'UTC'",
    "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')",
}
_DATABASE_NOW = {dialect: text(f"SELECT {now}") for dialect, now in _NOW.items()}
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
# The statements every API call runs are built once, here and in :func:`_statements`:
# building a statement and its cache key costs more Python time than running it on
# SQLite, and under load each call's transaction holds the writer lock meanwhile.
_LOCK_TABLE = FilterLock.__table__
_TOUCH_LOCK = (update(_LOCK_TABLE).where(_LOCK_TABLE.c.id == 1)
               .values(changed_at=_LOCK_TABLE.c.changed_at).returning(_LOCK_TABLE.c.changed_at))
_STAMP_LOCK = (update(_LOCK_TABLE).where(_LOCK_TABLE.c.id == 1)
               .values(changed_at=bindparam("p_stamp", type_=DateTime)))
_SUBSCRIBERS = Subscriber.__table__
#: A subscriber's id and UUID: all a filter operation needs of it (no ORM object).
_SUBSCRIBER_REF = select(_SUBSCRIBERS.c.id, _SUBSCRIBERS.c.uuid).where(
    _SUBSCRIBERS.c.uuid == bindparam("p_system"))
#: The same and the database's time in one statement (for a read, which takes no lock).
_SUBSCRIBER_REF_AND_NOW = {
    dialect: _SUBSCRIBER_REF.add_columns(literal_column(now).label("now"))
    for dialect, now in _NOW.items()}
_AUDIT_INSERT = insert(AuditEntry.__table__)


@dataclass(frozen=True)
class _FilterStatements:
    """One filter type's statements for the single-value operations, with bind
    parameters ``p_subscriber``, ``p_now``/``p_at`` and ``p_<argument>``."""

    #: Insert the filter unless it is in force (a row back: ADDED, none: ALREADY_EXISTED;
    #: RETURNING, since psycopg's rowcount of an INSERT ... SELECT is not reliable).
    add: Any
    #: Close the filter in force (rowcount 1: REMOVED, 0: not there).
    remove: Any


@cache
def _statements(ftype: FilterType, dialect: str) -> _FilterStatements:
    """The statements of ``ftype`` for ``dialect``, built on first use. Check and write
    are one statement each. On SQLite the filter lock (held by the caller) makes them
    race-free; on PostgreSQL single-filter changes hold it shared, so two may add the
    same filter at once, and the insert leaves it to the unique index on current rows
    (``uq_<table>_current``): the loser waits for the winner's commit and adds nothing."""
    table = ftype.model.__table__
    names = [a.name for a in ftype.arguments]
    subscriber = bindparam("p_subscriber", type_=Integer)
    now = bindparam("p_now", type_=DateTime)
    values = [bindparam(f"p_{n}", type_=table.c[n].type) for n in names]
    columns = [table.c[n] for n in names]
    current = and_(table.c.subscriber_id == subscriber, table.c.removed_at.is_(None),
                   *[table.c[n] == v for n, v in zip(names, values, strict=True)])
    add = insert(table) if dialect != "postgresql" else (
        postgresql.insert(table).on_conflict_do_nothing(
            index_elements=[table.c.subscriber_id, *columns],
            index_where=table.c.removed_at.is_(None)))
    return _FilterStatements(
        add=add.from_select(["subscriber_id", "added_at", *names],
                            select(subscriber, now, *values).where(~exists().where(current)))
        .returning(table.c.id),
        remove=update(table).where(current).values(removed_at=now))


@dataclass(frozen=True)
class _Listing:
    """GetAllFilters in one statement: every type's filters in force for subscriber
    ``p_subscriber`` at ``p_at`` (one round trip instead of one per type). Each row is
    ``(type's position in TYPES, *slots)``; a type's columns sit in the number or the
    text slots, in their order, so ``ORDER BY`` position and slots sorts each type by
    its columns as its own listing would."""

    types: tuple[FilterType, ...]
    statement: Any
    #: Per type, the row positions of its columns.
    positions: tuple[tuple[int, ...], ...]

    def split(self, rows: Sequence[Any]) -> dict[FilterType, list[Any]]:
        found: dict[FilterType, list[Any]] = {t: [] for t in self.types}
        for row in rows:
            kind = row[0]
            ftype = self.types[kind]
            found[ftype].append(ftype.listed(tuple(row[i] for i in self.positions[kind])))
        return found


def _is_number(column: Any) -> bool:
    return isinstance(column.type, Integer)


def _slots(table: Any, columns: list[Any], width: int, slot_type: Any, prefix: str
           ) -> list[Any]:
    """``columns`` cast to ``slot_type``, padded with typed NULLs to ``width``, each
    labelled (unlabelled, equal NULL casts would collapse into one column)."""
    values = [cast(table.c[c.key], slot_type) for c in columns]
    values += [cast(null(), slot_type)] * (width - len(columns))
    return [v.label(f"{prefix}{i}") for i, v in enumerate(values)]


@cache
def _listing(types: tuple[FilterType, ...]) -> _Listing:
    """The listing of ``types`` (``filters.TYPES``: a type registered later gets a
    statement of its own)."""
    numbers = max(sum(map(_is_number, t.columns)) for t in types)
    texts = max(sum(not _is_number(c) for c in t.columns) for t in types)
    selects, positions = [], []
    for kind, ftype in enumerate(types):
        table = ftype.model.__table__
        number_columns = [c for c in ftype.columns if _is_number(c)]
        text_columns = [c for c in ftype.columns if not _is_number(c)]
        if list(ftype.columns) != number_columns + text_columns:
            raise TypeError(f"{ftype.group}: number columns must come before text columns")
        positions.append(tuple(1 + i for i in range(len(number_columns)))
                         + tuple(1 + numbers + i for i in range(len(text_columns))))
        selects.append(select(
            literal(kind, SmallInteger).label("kind"),
            *_slots(table, number_columns, numbers, BigInteger, "number"),
            *_slots(table, text_columns, texts, String, "text"),
        ).where(table.c.subscriber_id == bindparam("p_subscriber", type_=Integer),
                in_force(table.c, bindparam("p_at", type_=DateTime))))
    everything = union_all(*selects).subquery()
    return _Listing(types, select(everything).order_by(*everything.c), tuple(positions))


def _filter_parameters(sub: Any, values: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    return {"p_subscriber": sub.id, "p_now": now, **{f"p_{k}": v for k, v in values.items()}}


def database_now(session: Session) -> dt.datetime:
    """The database server's clock, naive UTC (the form every stored timestamp has)."""
    dialect = session.get_bind().dialect.name
    if dialect not in _DATABASE_NOW:
        raise NotImplementedError(f"no database clock for dialect {dialect!r}")
    return _as_datetime(session.execute(_DATABASE_NOW[dialect]).scalar_one())


def _as_datetime(value: str | dt.datetime) -> dt.datetime:
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


def validate_uuid(value: str, *, what: str = "UserSystemUUID",
                  error: type[FilterInputError] = InvalidSubscriber) -> str:
    try:
        return str(uuidlib.UUID(str(value)))
    except ValueError:
        raise error(f"{what} {rules.shown(value)} is not a UUID") from None


def validate_agreement(value: str) -> str:
    """A ServiceAgreementUUID, normalised (lowercase, hyphenated)."""
    return validate_uuid(value, what="ServiceAgreementUUID", error=InvalidServiceAgreement)


@dataclass(frozen=True)
class _Delivery:
    """A new subscriber's delivery settings, validated."""

    mode: str
    account: str | None
    keys: list[SshKeyInfo]


def _record_delivery_setting(s: Session, sub: Subscriber, now: dt.datetime) -> None:
    """Close ``sub``'s delivery setting in force and open one with its columns as they
    are now, so the snapshot as of an instant knows how it was delivered to then."""
    s.flush()
    s.execute(update(DeliverySetting)
              .where(DeliverySetting.subscriber_id == sub.id,
                     DeliverySetting.valid_to.is_(None))
              .values(valid_to=now).execution_options(synchronize_session=False))
    s.add(DeliverySetting(subscriber_id=sub.id, delivery_mode=sub.delivery_mode,
                          pickup_account=sub.pickup_account, sftp_conn_id=sub.sftp_conn_id,
                          remote_dir=sub.remote_dir, valid_from=now))


@dataclass(frozen=True)
class _Switch:
    """The result of :meth:`SubscriptionService.set_delivery` inside its transaction."""

    info: SubscriberDetails
    account: str | None
    #: Another subscriber holding the account asked for (nothing changed), if any.
    owner: str | None = None


def _account_for(mode: str, account: str | None, uuid: str) -> str | None:
    """The pick-up account of a new subscriber: given or its UUID; none for push."""
    if mode == PUSH:
        if account is not None:
            raise InvalidDeliveryMode("a pick-up account is for delivery mode pickup")
        return None
    return validate_account_name(account) if account else uuid


def _account_owner(s: Session, account: str, own_id: int | None) -> str | None:
    """The UUID of another subscriber holding pick-up account ``account``, if any."""
    return s.scalar(select(Subscriber.uuid).where(Subscriber.pickup_account == account,
                                                  Subscriber.id != (own_id or -1)))


def _refuse_taken_account(s: Session, account: str, own_id: int | None,
                          field: str | None = None) -> None:
    owner = _account_owner(s, account, own_id)
    if owner is not None:
        raise RegisteredToAnotherSystem(
            f"pick-up account {account} is already registered for IT system {owner}",
            what="pick-up account", owner=owner, field=field)


def _refuse_held(s: Session, doc: Document, own_id: int | None) -> None:
    """Refuse a registration naming what another IT system uses, checked before the
    document's system is touched (a change pending in ``s`` would be flushed by these
    queries). The push connection holds the other system's host and password: taking
    it over would send this system's files there, or, with credentials, re-point the
    other system's deliveries to this document's host. The pick-up account is checked
    here too, before the row is written: the unique index would refuse it only with
    the database's own message."""
    if doc.pickup_account is not None:
        _refuse_taken_account(s, doc.pickup_account, own_id, field="delivery.account")
    push = doc.push
    if push is not None:
        owner = s.scalar(select(Subscriber.uuid).where(
            Subscriber.sftp_conn_id == push.connection, Subscriber.id != (own_id or -1)))
        if owner is not None:
            raise RegisteredToAnotherSystem(
                f"Airflow connection {push.connection} is used by IT system {owner}; name "
                "a connection of this system's own", what="Airflow connection", owner=owner,
                field="delivery.connection")


def _store_key(s: Session, sub: Subscriber, key: SshKeyInfo, now: dt.datetime) -> None:
    s.add(SshKey(subscriber_id=sub.id, key_type=key.key_type, key_data=key.key_data,
                 fingerprint=key.fingerprint, bits=key.bits, comment=key.comment,
                 added_at=now))


class SubscriptionService:
    """The operations, bound to a database and to the caller recorded in the audit.

    ``clock`` is for tests that need fixed instants; left out, every stamp comes from
    the database server (see :func:`lock_filters`).
    """

    def __init__(self, engine: Engine, *, caller: str,
                 clock: Callable[[], dt.datetime] | None = None,
                 trail: CallTrail = CallTrail()) -> None:
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
        session.connection().execute(_AUDIT_INSERT, {
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
            row = s.execute(_SUBSCRIBER_REF_AND_NOW[s.get_bind().dialect.name],
                            {"p_system": system}).first()
            return (row, _as_datetime(row.now)) if row else (None, self._now(s))
        sub = None if whole else s.execute(_SUBSCRIBER_REF, {"p_system": system}).first()
        now = lock_filters(s, self.clock, shared=shared) if locked else self._now(s)  # FilterLock
        return sub, now

    def _add(self, ftype: FilterType):
        def apply(s: Session, sub: Any, values: dict[str, Any], now: dt.datetime
                  ) -> Outcome:
            connection = s.connection()
            added = connection.execute(_statements(ftype, connection.dialect.name).add,
                                           _filter_parameters(sub, values, now)).first()
            return Outcome(Result.ALREADY_EXISTED if added is None else Result.ADDED,
                           ftype.warning(values))
        return apply

    def _remove(self, ftype: FilterType):
        def apply(s: Session, sub: Any, values: dict[str, Any], now: dt.datetime
                  ) -> Outcome:
            connection = s.connection()
            done = connection.execute(_statements(ftype, connection.dialect.name).remove,
                                          _filter_parameters(sub, values, now))
            return Outcome(Result.REMOVED if done.rowcount else Result(ftype.missing))
        return apply

    @staticmethod
    def _describe(outcome: Outcome) -> str:
        return outcome.result.value + (f" (warning: {outcome.warning})" if outcome.warning
                                       else "")

    # -- the SF6002 operations, for any filter type ---------------------------------
    def add(self, system: str, ftype: FilterType, *raw: Any) -> Outcome:
        """``Add<group>Subscription``: ``raw`` are the type's arguments, as given."""
        return self._run(system, ftype.add_operation, ftype.audited(raw),
                         lambda: ftype.parse(*raw), self._add(ftype), self._describe,
                         shared=True, whole=False)

    def remove(self, system: str, ftype: FilterType, *raw: Any) -> Outcome:
        """``Remove<group>Subscription``; a filter not in force gives ``ftype.missing``."""
        return self._run(system, ftype.remove_operation, ftype.audited(raw),
                         lambda: ftype.parse(*raw), self._remove(ftype), self._describe,
                         shared=True, whole=False)

    def add_pnr(self, system: str, pnr: str) -> Outcome:
        return self.add(system, PNR, pnr)

    def remove_pnr(self, system: str, pnr: str) -> Outcome:
        return self.remove(system, PNR, pnr)

    def add_age_range(self, system: str, start_age: int, end_age: int) -> Outcome:
        return self.add(system, AGE_RANGE, start_age, end_age)

    def remove_age_range(self, system: str, start_age: int, end_age: int) -> Outcome:
        return self.remove(system, AGE_RANGE, start_age, end_age)

    def add_municipality(self, system: str, code: str | int) -> Outcome:
        return self.add(system, MUNICIPALITY_CODE, code)

    def remove_municipality(self, system: str, code: str | int) -> Outcome:
        return self.remove(system, MUNICIPALITY_CODE, code)

    def add_change_code(self, system: str, code: str) -> Outcome:
        return self.add(system, CHANGE_CODE, code)

    def remove_change_code(self, system: str, code: str) -> Outcome:
        return self.remove(system, CHANGE_CODE, code)

    def remove_all(self, system: str, group: str) -> int:
        def apply(s: Session, sub: Subscriber, ftype: FilterType, now: dt.datetime) -> int:
            model = ftype.model
            done = s.execute(update(model).where(model.subscriber_id == sub.id,
                                                 model.removed_at.is_(None))
                             .values(removed_at=now))
            return int(done.rowcount or 0)
        return self._run(system, "RemoveAll", {"group": str(group)},
                         lambda: filters.by_group(group), apply,
                         lambda n: f"REMOVED {n}")

    def get_all_filters(self, system: str, as_of: dt.datetime | None = None) -> FilterSet:
        def apply(s: Session, sub: Any, at: dt.datetime, now: dt.datetime) -> FilterSet:
            at = at or now
            listing = _listing(filters.TYPES)
            rows = s.connection().execute(listing.statement,
                                          {"p_subscriber": sub.id, "p_at": at})
            return FilterSet(sub.uuid, at, {t.listing: items
                                            for t, items in listing.split(rows.all()).items()})

        def describe(f: FilterSet) -> str:
            counts = ", ".join(f"{len(f.listings[t.listing])} {t.noun}" for t in filters.TYPES)
            return f"OK: {counts} filters" + (" (receives nothing)" if f.empty else "")
        at = as_naive_utc(as_of) if as_of else None
        return self._run(system, "GetAllFilters", {"as_of": at.isoformat() if at else None},
                         lambda: at, apply, describe, locked=False, whole=False)

    # -- bulk variants (one call, many values: PNR) ---------------------------------
    def add_pnrs(self, system: str, pnrs: Sequence[str]) -> BulkOutcome:
        """Add many PNRs in one transaction; invalid items are rejected individually."""
        return self.add_many(system, PNR, pnrs)

    def remove_pnrs(self, system: str, pnrs: Sequence[str]) -> BulkOutcome:
        return self.remove_many(system, PNR, pnrs)

    def add_many(self, system: str, ftype: FilterType, values: Sequence[Any]) -> BulkOutcome:
        return self._bulk(system, ftype, values, adding=True)

    def remove_many(self, system: str, ftype: FilterType, values: Sequence[Any]
                    ) -> BulkOutcome:
        return self._bulk(system, ftype, values, adding=False)

    def _bulk(self, system: str, ftype: FilterType, raw: Sequence[Any], *, adding: bool
              ) -> BulkOutcome:
        """``Add<group>Subscriptions``: one transaction, the type's vectorised rule."""
        (argument,) = ftype.arguments
        operation = (ftype.add_operation if adding else ftype.remove_operation) + "s"
        sample = [argument.audited(v) for v in raw[:AUDIT_SAMPLE]]

        def apply(s: Session, sub: Subscriber, _: None, now: dt.datetime) -> BulkOutcome:
            missing = Result(ftype.missing).value
            results = ftype.apply_many(s, sub.id, raw, now, adding=adding,
                                       missing=missing)
            return BulkOutcome(results)

        return self._run(system, operation, {"count": len(raw), "sample": sample},
                         lambda: None, apply,
                         lambda b: "OK: " + json.dumps(b.counts, sort_keys=True))

    # -- subscribers ---------------------------------------------------------------
    def add_subscriber(self, uuid: str, name: str, *, serves: str | None = None,
                       sftp_conn_id: str | None = None, remote_dir: str = ".",
                       service_agreements: Sequence[str] = (), delivery_mode: str = PUSH,
                       pickup_account: str | None = None,
                       ssh_keys: Sequence[str | bytes] = ()) -> SubscriberDetails:
        """Register an IT system (and its service agreements and SSH keys, in the same
        transaction). A ``pickup`` subscriber's account defaults to its UUID."""
        uuid = validate_uuid(uuid)
        if not name.strip():
            raise InvalidSubscriber("a subscriber needs a name")
        remote_dir = rules.remote_dir(remote_dir)
        agreements = list(dict.fromkeys(validate_agreement(a) for a in service_agreements))
        mode = validate_mode(delivery_mode)
        account = _account_for(mode, pickup_account, uuid)
        keys = list({k.fingerprint: k for k in map(parse_public_key, ssh_keys)}.values())
        arguments = {"name": name, "serves": serves, "sftp_conn_id": sftp_conn_id,
                     "remote_dir": remote_dir, "service_agreements": agreements,
                     "delivery_mode": mode, "pickup_account": account,
                     "ssh_keys": [k.fingerprint for k in keys]}
        delivery = _Delivery(mode, account, keys)
        try:
            return self._add_subscriber(uuid, name, serves, sftp_conn_id, remote_dir,
                                        agreements, arguments, delivery)
        except RegisteredToAnotherSystem as exc:
            with writing(self.engine) as s:  # the refusal leaves a trace too
                self._audit(s, uuid, "AddSubscriber", arguments, f"REFUSED: {exc}",
                            self._now(s))
            raise

    def _add_subscriber(self, uuid: str, name: str, serves: str | None,
                        sftp_conn_id: str | None, remote_dir: str, agreements: list[str],
                        arguments: dict[str, Any], delivery: _Delivery) -> SubscriberDetails:
        with writing(self.engine) as s:
            now = lock_filters(s, self.clock)
            if s.scalar(select(Subscriber.id).where(Subscriber.uuid == uuid)) is not None:
                raise SubscriberExists(f"subscriber {uuid} already exists")
            if delivery.account is not None:
                _refuse_taken_account(s, delivery.account, None)
            sub = Subscriber(uuid=uuid, name=name.strip(), serves=serves,
                             sftp_conn_id=sftp_conn_id, remote_dir=remote_dir, active=True,
                             created_at=now, delivery_mode=delivery.mode,
                             pickup_account=delivery.account)
            s.add(sub)
            self._audit(s, uuid, "AddSubscriber", arguments, "ADDED", now)
            _record_delivery_setting(s, sub, now)
            for agreement in agreements:
                self._register_agreement(s, sub, agreement, now)
            for key in delivery.keys:
                owner = self._owner(s, SshKey, SshKey.fingerprint, key.fingerprint)
                if owner is not None:
                    raise RegisteredToAnotherSystem(
                        f"SSH key {key.fingerprint} is already registered for IT system "
                        f"{owner[1]}", what="SSH key", owner=owner[1])
                _store_key(s, sub, key, now)
            return SubscriberDetails.of(s, sub)

    def set_active(self, uuid: str, active: bool) -> SubscriberDetails:
        info = None
        with writing(self.engine) as s:
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
                info = SubscriberDetails.of(s, sub)
        certificates.forget_registrations()
        if info is not None:
            if not active:
                credentials.forget_subscriber(uuid)
            return info
        raise UnknownSubscriber(f"no subscriber with UserSystemUUID {uuid}")

    def update_subscriber(self, uuid: str, *, name: str | None = None,
                          serves: str | None = None, sftp_conn_id: str | None = None,
                          remote_dir: str | None = None) -> SubscriberUpdate:
        """Re-point an IT system: its name, what it serves, its push target (Airflow
        connection id, remote directory). Only the fields given change; filters,
        credentials, keys and history stay. Audited ``UpdateSubscriber`` with the
        values before and after, so the trail says what changed when."""
        def validate() -> dict[str, str]:
            wanted = {"name": name.strip() if name is not None else None, "serves": serves,
                      "sftp_conn_id": sftp_conn_id,
                      "remote_dir": rules.remote_dir(remote_dir) if remote_dir is not None
                      else None}
            if name is not None and not wanted["name"]:
                raise InvalidSubscriber("a subscriber needs a name")
            if sftp_conn_id is not None and not sftp_conn_id.strip():
                raise InvalidSubscriber("an SFTP connection id may not be empty")
            given = {k: v for k, v in wanted.items() if v is not None}
            if not given:
                raise InvalidSubscriber("nothing to update: give a name, serves, an SFTP "
                                        "connection id or a remote dir")
            return given

        def apply(s: Session, sub: Subscriber, given: dict[str, str], now: dt.datetime
                  ) -> SubscriberUpdate:
            before = {k: getattr(sub, k) for k in given}
            changed = [k for k, v in given.items() if before[k] != v]
            for key in changed:
                setattr(sub, key, given[key])
            audit_arguments["before"] = before
            return SubscriberUpdate(SubscriberDetails.of(s, sub), changed)

        audit_arguments: dict[str, Any] = {"after": {
            "name": name, "serves": serves, "sftp_conn_id": sftp_conn_id,
            "remote_dir": remote_dir}}
        return self._run(uuid, "UpdateSubscriber", audit_arguments, validate, apply,
                         SubscriberUpdate.describe)

    def subscribers(self, *, active_only: bool = False) -> list[SubscriberDetails]:
        with Session(self.engine) as s:
            q = select(Subscriber).order_by(Subscriber.name, Subscriber.uuid)
            if active_only:
                q = q.where(Subscriber.active.is_(True))
            return [SubscriberDetails.of(s, sub) for sub in s.scalars(q)]

    def subscriber(self, uuid: str) -> SubscriberDetails:
        """One subscriber, with its certificates and service agreements."""
        with Session(self.engine) as s:
            sub = s.scalar(select(Subscriber).where(Subscriber.uuid == uuid))
            if sub is None:
                raise UnknownSubscriber(f"no subscriber with UserSystemUUID {uuid}")
            return SubscriberDetails.of(s, sub)

    # -- certificates and service agreements (SF6002 over mutual TLS) ---------------
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

    def add_certificate(self, system: str, pem: bytes | str) -> Registration:
        """Register a client certificate for ``system`` (several may be current); one
        the configured client CA did not issue is refused, and without a configured CA
        the result says its issuer went unchecked."""
        def store(s: Session, sub: Subscriber, cert: CertificateInfo, now: dt.datetime
                  ) -> None:
            s.add(Certificate(subscriber_id=sub.id, sha256=cert.sha256, subject=cert.subject,
                              not_after=cert.not_after, added_at=now))
        issuers = configured_client_ca()
        done = self._add_parsed(
            "certificate", system, "AddCertificate",
            lambda: parse_certificate(pem, now=self.clock() if self.clock else None,
                                      issuers=issuers),
            lambda cert: {"sha256": cert.sha256, "subject": cert.subject,
                          "not_after": cert.not_after.isoformat()},
            Certificate.sha256, store)
        if issuers is None and done.result is Result.ADDED:
            log.warning("certificate registered for %s: %s", system, UNCHECKED_ISSUER)
            return replace(done, warning=UNCHECKED_ISSUER)
        return done

    def remove_certificate(self, system: str, sha256: str) -> Registration:
        """Close a certificate's registration; ``NON_EXISTING`` if it is not current."""
        return self._remove_registered("certificate", system, "RemoveCertificate",
                                       Certificate.sha256, {"sha256": str(sha256)[:80]},
                                       lambda: normalise_fingerprint(sha256))

    def _register_agreement(self, s: Session, sub: Subscriber, agreement: str,
                            now: dt.datetime) -> Registration:
        owner = self._owner(s, ServiceAgreement, ServiceAgreement.uuid, agreement)
        if owner is not None:
            if owner[0] != sub.id:
                # Within add_subscriber: refuse the whole registration.
                raise RegisteredToAnotherSystem(
                    f"service agreement {agreement} is already registered for IT system "
                    f"{owner[1]}", what="service agreement", owner=owner[1])
            return Registration(Result.ALREADY_EXISTED)
        s.add(ServiceAgreement(subscriber_id=sub.id, uuid=agreement, added_at=now))
        return Registration(Result.ADDED)

    def add_service_agreement(self, system: str, agreement: str) -> Registration:
        """Register a ServiceAgreementUUID for ``system``."""
        def apply(s: Session, sub: Subscriber, value: str, now: dt.datetime) -> Registration:
            owner = self._owner(s, ServiceAgreement, ServiceAgreement.uuid, value)
            if owner is not None and owner[0] != sub.id:
                return Registration(Result.ALREADY_EXISTED, owner[1])
            return self._register_agreement(s, sub, value, now)
        return self._registration("service agreement", system, "AddServiceAgreement",
                                  {"service_agreement": str(agreement)[:80]},
                                  lambda: validate_agreement(agreement), apply)

    def remove_service_agreement(self, system: str, agreement: str) -> Registration:
        return self._remove_registered("service agreement", system, "RemoveServiceAgreement",
                                       ServiceAgreement.uuid,
                                       {"service_agreement": str(agreement)[:80]},
                                       lambda: validate_agreement(agreement))

    # -- delivery mode and pick-up SSH keys ----------------------------------------
    def add_ssh_key(self, system: str, key: str | bytes) -> Registration:
        """Register an SSH public key (one OpenSSH line) for ``system``'s pick-up account;
        several may be current (rotation). Refused by the rule ``ssh key``
        (:func:`~cpr_abonnement.identities.ssh_keys.parse_public_key`), or when
        another system has it."""
        return self._add_parsed(
            "SSH key", system, "AddSshKey", lambda: parse_public_key(key),
            lambda info: {"fingerprint": info.fingerprint, "type": info.key_type,
                          "bits": info.bits, "comment": info.comment},
            SshKey.fingerprint, _store_key)

    def remove_ssh_key(self, system: str, fingerprint: str) -> Registration:
        """Close an SSH key's validity period (``SHA256:...``); ``NON_EXISTING`` if it is
        not a current key of ``system``. The next login with it is refused."""
        return self._remove_registered("SSH key", system, "RemoveSshKey", SshKey.fingerprint,
                                       {"fingerprint": str(fingerprint)[:80]},
                                       lambda: normalise_ssh_fingerprint(fingerprint))

    def set_delivery(self, system: str, mode: str, *, pickup_account: str | None = None,
                     sftp_conn_id: str | None = None, remote_dir: str | None = None
                     ) -> SubscriberDetails:
        """Switch ``system`` to ``push`` or ``pickup`` (audited ``SetDelivery``).

        Pick-up: the account is ``pickup_account``, else the one it had, else its UUID;
        an account name stays reserved for its subscriber also in push mode (its folder
        may still hold that subscriber's files). Push: the SFTP connection given or the
        one it had (one is required); a push subscriber has no pick-up account, so its
        keys stop working at the next login.
        """
        def validate() -> tuple[str, str | None, str | None, str | None]:
            chosen = validate_mode(mode)
            if chosen == PUSH and pickup_account is not None:
                raise InvalidDeliveryMode("a pick-up account is for delivery mode pickup")
            return (chosen,
                    validate_account_name(pickup_account) if pickup_account else None,
                    sftp_conn_id, rules.remote_dir(remote_dir) if remote_dir else None)

        def apply(s: Session, sub: Subscriber, value: tuple, now: dt.datetime) -> _Switch:
            chosen, account, conn, directory = value
            if chosen == PICKUP:
                account = account or sub.pickup_account or sub.uuid
                owner = _account_owner(s, account, sub.id)
                if owner is not None:
                    return _Switch(SubscriberDetails.of(s, sub), account, owner)
                sub.pickup_account = account
            elif not (conn or sub.sftp_conn_id):
                raise InvalidDeliveryMode("delivery mode push needs an SFTP connection "
                                          "(--sftp-conn-id)")
            sub.delivery_mode = chosen
            sub.sftp_conn_id = conn or sub.sftp_conn_id
            sub.remote_dir = directory or sub.remote_dir
            _record_delivery_setting(s, sub, now)
            return _Switch(SubscriberDetails.of(s, sub), account)

        def describe(done: _Switch) -> str:
            if done.owner:
                return f"REFUSED: pick-up account registered for IT system {done.owner}"
            return f"{done.info.delivery_mode.upper()} {done.info.pickup_account or ''}".strip()

        arguments = {"delivery_mode": str(mode)[:16], "pickup_account": pickup_account,
                     "sftp_conn_id": sftp_conn_id, "remote_dir": remote_dir}
        done = self._run(system, "SetDelivery", arguments, validate, apply, describe)
        if done.owner:
            raise RegisteredToAnotherSystem(
                f"pick-up account {done.account} is already registered for IT system "
                f"{done.owner}; choose another", what="pick-up account", owner=done.owner)
        return done.info

    def audit_trail(self, system: str | None = None) -> list[AuditEntry]:
        with Session(self.engine) as s:
            q = select(AuditEntry).order_by(AuditEntry.id)
            if system:
                q = q.where(AuditEntry.subscriber_uuid == system)
            return list(s.scalars(q))

    # -- registration as one document (issue 15) ---------------------------------
    def register(self, doc: Document, *, also_changed: Sequence[str] = ()) -> RegisterOutcome:
        """Create or update an IT system from a validated registration
        (:func:`~cpr_abonnement.onboarding.registration.parse_document`), in one
        transaction. The same document twice changes nothing and writes no audit row; every
        change is audited in one ``Register`` row listing what changed. A service agreement,
        certificate, SSH key or pick-up account of another system refuses the whole
        document (audited ``REFUSED``). ``also_changed`` are changes made outside this
        database for the same document (the Airflow connection), audited with it."""
        try:
            return self._register(doc, also_changed)
        finally:
            certificates.forget_registrations()

    def check_register(self, doc: Document) -> None:
        """Refuse now what :meth:`register` would refuse as held by another IT system
        (audited ``REFUSED`` the same way), for a caller that first changes something
        outside this database (the command line writes the Airflow connection), which
        no transaction here could undo. :meth:`register` checks again under the lock."""
        refused = self._held_by_another(doc)
        if refused is not None:
            self._refused(doc.uuid, refused)
            raise refused

    def _held_by_another(self, doc: Document) -> RegisteredToAnotherSystem | None:
        """What :func:`_refuse_held` refuses in ``doc`` as the database is now."""
        with Session(self.engine) as s:
            own = s.scalar(select(Subscriber.id).where(Subscriber.uuid == doc.uuid))
            try:
                _refuse_held(s, doc, own)
            except RegisteredToAnotherSystem as exc:
                return exc
        return None

    def _refused(self, uuid: str, exc: Exception) -> None:
        """Audit a refused registration in a transaction of its own: the one that
        refused it was rolled back, and a refusal must leave a trace."""
        with writing(self.engine) as s:
            self._audit(s, uuid, "Register", {}, f"REFUSED: {exc}", self._now(s))

    def _register(self, doc: Document, also_changed: Sequence[str]) -> RegisterOutcome:
        try:
            try:
                return self._register_once(doc, also_changed)
            except IntegrityError as exc:
                # Taken by a writer that committed after the check (a unique index
                # refused it): answered as the check would have, if that is what it was.
                refused = self._held_by_another(doc)
                if refused is None:
                    raise
                raise refused from exc
        except (RegisteredToAnotherSystem, InvalidSubscriber) as exc:
            self._refused(doc.uuid, exc)
            raise

    def _register_once(self, doc: Document, also_changed: Sequence[str]) -> RegisterOutcome:
        with writing(self.engine) as s:
            now = lock_filters(s, self.clock)
            existed = s.scalar(select(Subscriber.id).where(Subscriber.uuid == doc.uuid))
            _, changes = _register_apply(self, s, doc, now)
            changes += also_changed
            if not changes:
                return RegisterOutcome(doc.uuid, "UNCHANGED")
            result = "UPDATED" if existed else "CREATED"
            self._audit(s, doc.uuid, "Register", {"changes": changes}, result, now)
            return RegisterOutcome(doc.uuid, result, tuple(changes))


    def registration_document(self, uuid: str) -> dict[str, Any]:
        """The IT system ``uuid`` as a registration document (no secrets): see
        :func:`~cpr_abonnement.onboarding.registration.render`."""
        from cpr_abonnement.onboarding.registration import render

        with Session(self.engine) as s:
            sub = s.scalar(select(Subscriber).where(Subscriber.uuid == uuid))
            if sub is None:
                raise UnknownSubscriber(f"no subscriber with UserSystemUUID {uuid}")
            keys = s.scalars(select(SshKey).where(SshKey.subscriber_id == sub.id,
                                                  SshKey.removed_at.is_(None))
                             .order_by(SshKey.added_at, SshKey.id))
            lines = [SshKeyInfo(k.key_type, k.key_data, k.fingerprint, k.bits, k.comment).line
                     for k in keys]
            return render(SubscriberDetails.of(s, sub), _profile_of(sub), lines)

    def count_filters(self, uuid: str) -> int:
        """How many filters of every type are in force for ``uuid`` now (not audited:
        an operator's check, not a GetAllFilters call)."""
        with Session(self.engine) as s:
            sub_id = s.scalar(select(Subscriber.id).where(Subscriber.uuid == uuid))
            if sub_id is None:
                raise UnknownSubscriber(f"no subscriber with UserSystemUUID {uuid}")
            return sum(s.scalar(select(func.count()).select_from(t.model).where(
                t.model.subscriber_id == sub_id, t.model.removed_at.is_(None))) or 0
                for t in filters.TYPES)

    def import_filters(self, system: str, plan: ImportPlan, *, dry_run: bool = False
                       ) -> BulkOutcome:
        """Load an imported filter list (:mod:`~cpr_abonnement.onboarding.importing`)
        in one transaction: per item (file order, PNRs last) ``ADDED``,
        ``ALREADY_EXISTED`` or ``REJECTED: why``. ``dry_run`` computes the same results
        and rolls everything back (nothing changes, nothing is audited); otherwise one
        ``ImportFilters`` audit row holds the counts and a masked sample."""
        with Session(self.engine) as s:
            transaction = s.begin()
            try:
                now = lock_filters(s, self.clock)
                sub = s.scalar(select(Subscriber).where(Subscriber.uuid == system))
                if sub is None:
                    raise UnknownSubscriber(f"no subscriber with UserSystemUUID {system}")
                results = [self._import_item(s, sub, group, raw, now)
                           for group, raw in plan.items]
                results += PNR.apply_many(s, sub.id, plan.pnrs, now, adding=True,
                                          missing=Result.NON_EXISTING_PNR.value)
                done = BulkOutcome(results)
                if dry_run:
                    transaction.rollback()
                    return done
                sample = [PNR.arguments[0].audited(p) for p in plan.pnrs[:AUDIT_SAMPLE]]
                self._audit(s, system, "ImportFilters",
                            {"count": plan.size, "pnr_sample": sample},
                            "OK: " + json.dumps(done.counts, sort_keys=True), now)
                transaction.commit()
                return done
            except BaseException:
                if transaction.is_active:
                    transaction.rollback()
                raise

    def _import_item(self, s: Session, sub: Subscriber, group: str, raw: tuple,
                     now: dt.datetime) -> str:
        ftype = filters.by_group(group)
        try:
            values = ftype.parse(*raw)
        except FilterInputError as exc:
            return f"REJECTED: {exc}"
        return self._add(ftype)(s, sub, values, now).result.value

    def record_readiness(self, uuid: str, result: str) -> None:
        """Audit a readiness check (``cprsub subscriber check``) and its outcome."""
        with writing(self.engine) as s:
            self._audit(s, uuid, "ReadinessCheck", {}, result, self._now(s))


# -- registration as one document (issue 15) -----------------------------------------
@dataclass(frozen=True)
class RegisterOutcome:
    """What :meth:`SubscriptionService.register` changed: ``CREATED``, ``UPDATED`` (with
    the changes, one line each) or ``UNCHANGED`` (nothing written, nothing audited)."""

    uuid: str
    result: str
    changes: tuple[str, ...] = ()


def _profile_of(sub: Subscriber) -> dict[str, Any] | None:
    return json.loads(sub.registration) if sub.registration else None


def _sync_rows(s: Session, model, sub: Subscriber, key, wanted: dict[str, Any],
               now: dt.datetime, add: Callable[[Any], None], what: str) -> list[str]:
    """Make ``sub``'s current rows of ``model`` exactly ``wanted`` (by ``key``): close
    the ones not wanted, add the missing ones (``add``). One change line each."""
    current = set(s.scalars(select(key).where(model.subscriber_id == sub.id,
                                              model.removed_at.is_(None))))
    changes = []
    for gone in sorted(current - set(wanted)):
        s.execute(update(model).where(model.subscriber_id == sub.id, key == gone,
                                      model.removed_at.is_(None)).values(removed_at=now))
        changes.append(f"removed {what} {gone}")
    for value in [v for v in wanted if v not in current]:
        add(wanted[value])
        changes.append(f"added {what} {value}")
    return changes


def _register_fields(sub: Subscriber, doc, now: dt.datetime) -> list[str]:
    """Set the subscriber row's own fields from ``doc``; one change line per field."""
    from cpr_abonnement.pickup.accounts import PUSH as push_mode

    wanted = {"name": doc.name, "serves": doc.serves, "delivery_mode": doc.mode,
              "registration": json.dumps(doc.profile(), sort_keys=True, ensure_ascii=False)}
    if doc.mode == push_mode:
        wanted |= {"sftp_conn_id": doc.push.connection, "remote_dir": doc.push.folder}
    else:
        wanted["pickup_account"] = doc.pickup_account
    changes = []
    for column, value in wanted.items():
        if getattr(sub, column) != value:
            setattr(sub, column, value)
            changes.append(f"set {column}" if column == "registration"
                           else f"set {column} = {value}")
    return changes


def _register_apply(svc: SubscriptionService, s: Session, doc, now: dt.datetime
                    ) -> tuple[Subscriber, list[str]]:
    """Everything :meth:`SubscriptionService.register` writes, in the caller's transaction."""
    sub = s.scalar(select(Subscriber).where(Subscriber.uuid == doc.uuid))
    _refuse_held(s, doc, sub.id if sub else None)
    changes: list[str] = []
    if sub is None:
        sub = Subscriber(uuid=doc.uuid, name=doc.name, active=True, created_at=now,
                         remote_dir=".")
        s.add(sub)
        changes.append("created")
    fields = _register_fields(sub, doc, now)
    if sub.id is not None:  # a new system's fields are all in its "created"
        changes += fields
    s.flush()  # gives a new system its id (its agreements, certificates, keys need it)

    def refuse_owned(model, key, value: str, what: str) -> None:
        owner = svc._owner(s, model, key, value)
        if owner is not None and owner[0] != sub.id:
            raise RegisteredToAnotherSystem(
                f"{what} {value} is already registered for IT system {owner[1]}",
                what=what, owner=owner[1])

    def add_agreement(value: str) -> None:
        refuse_owned(ServiceAgreement, ServiceAgreement.uuid, value, "service agreement")
        s.add(ServiceAgreement(subscriber_id=sub.id, uuid=value, added_at=now))

    def add_certificate(cert: CertificateInfo) -> None:
        refuse_owned(Certificate, Certificate.sha256, cert.sha256, "certificate")
        s.add(Certificate(subscriber_id=sub.id, sha256=cert.sha256, subject=cert.subject,
                          not_after=cert.not_after, added_at=now))

    def add_key(key: SshKeyInfo) -> None:
        refuse_owned(SshKey, SshKey.fingerprint, key.fingerprint, "SSH key")
        _store_key(s, sub, key, now)

    def unknown_certificate(sha256: str) -> None:
        raise InvalidSubscriber(f"certificates: {sha256} is not registered for this IT "
                                "system; give the certificate (PEM) itself")

    certs = {c.sha256: c for c in doc.certificates}
    certs |= {r: r for r in doc.certificate_refs}
    changes += _sync_rows(s, ServiceAgreement, sub, ServiceAgreement.uuid,
                          {a: a for a in doc.service_agreements}, now, add_agreement,
                          "service agreement")
    changes += _sync_rows(s, Certificate, sub, Certificate.sha256, certs, now,
                          lambda c: add_certificate(c) if isinstance(c, CertificateInfo)
                          else unknown_certificate(c), "certificate")
    changes += _sync_rows(s, SshKey, sub, SshKey.fingerprint,
                          {k.fingerprint: k for k in doc.ssh_keys}, now, add_key, "SSH key")
    return sub, changes

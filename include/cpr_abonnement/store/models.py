"""The filter database: subscribers, their filters with validity periods, audit.

Every filter row has a validity period ``[added_at, removed_at)``; removing a filter
closes the period instead of deleting the row, so "the filters in force at time T"
(product.md §3: an extract is filtered with the snapshot in force when it was first
processed) is one indexed query, and history is never lost. A partial unique index
allows at most one *current* row per subscriber and value.

Timestamps are naive UTC (``DateTime`` without zone) so SQLite and PostgreSQL compare
them the same way. Each filter type's table is declared with the type
(:mod:`cpr_abonnement.filters`), on this module's ``Base``: the store knows no filter
type, and the whole schema is :data:`cpr_abonnement.filters.METADATA`.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Subscriber(Base):
    """An IT system subscribing to changes (product.md §1: one per installation)."""

    __tablename__ = "subscriber"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: The municipality or agreement party the system serves (free text, e.g. "0851 Aalborg").
    serves: Mapped[str | None] = mapped_column(String(200))
    #: Airflow connection id of the delivery target; credentials and host keys live there.
    sftp_conn_id: Mapped[str | None] = mapped_column(String(250))
    remote_dir: Mapped[str] = mapped_column(String(500), default=".")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: ``push`` (to ``sftp_conn_id``) or ``pickup`` (placed in the account's ``IN/`` on our
    #: pick-up SFTP server; Serviceplatformen's way since 2016).
    delivery_mode: Mapped[str] = mapped_column(String(8), default="push",
                                               server_default="push")
    #: Login name on the pick-up server (default the UUID); kept when the subscriber goes
    #: back to push, so switching again restores it, but only a ``pickup`` subscriber that
    #: is active has an account (:mod:`cpr_abonnement.pickup.accounts`).
    pickup_account: Mapped[str | None] = mapped_column(String(64))
    #: The registration's further fields as JSON (municipality, supplier and CVR, contact
    #: person, push host details, service windows; never a secret), set by
    #: :meth:`~cpr_abonnement.subscriptions.service.SubscriptionService.register`.
    registration: Mapped[str | None] = mapped_column(Text)
    #: Whom its person look-ups may find: ``all`` persons, or only those its own
    #: subscriptions select (``subscribed``: :mod:`cpr_abonnement.replica.scope`).
    lookup_scope: Mapped[str] = mapped_column(String(16), default="all",
                                              server_default="all")

    __table_args__ = (Index("uq_subscriber_pickup_account", "pickup_account", unique=True),)


class DeliverySetting(Base):
    """How a subscriber is delivered to, with its validity period ``[valid_from,
    valid_to)``: the delivery mode and its target as the subscriber's columns held them
    then. A switch closes the period and opens the next, so the filter snapshot "as of"
    an instant also gives the delivery in force then (a backfill of an old day is
    delivered, and its ``.metadata`` names the recipient, as on that day)."""

    __tablename__ = "delivery_setting"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id"))
    delivery_mode: Mapped[str] = mapped_column(String(8))
    pickup_account: Mapped[str | None] = mapped_column(String(64))
    sftp_conn_id: Mapped[str | None] = mapped_column(String(250))
    remote_dir: Mapped[str] = mapped_column(String(500))
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime)
    valid_to: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index("ix_delivery_setting_subscriber_id", "subscriber_id", "valid_from"),
    )


class FilterRow:
    """Columns every filter table has: its subscriber and its validity period.

    The filter tables themselves are declared with their types in
    :mod:`cpr_abonnement.filters`, whose ``METADATA`` holds every table.
    """

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id"))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime)
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


#: The validity period's columns, carried by a covering lookup index.
PERIOD = ("added_at", "removed_at")


def filter_indexes(table: str, *keys: str, lookup: bool = True,
                   covering: bool = False) -> tuple[Index, ...]:
    """At most one current row per subscriber and value; optionally a lookup by value
    (the daily join finds filters by value, then checks subscriber and period).

    ``covering``: the lookup also holds the validity period, so the join answers from
    the index without reading a table row per hit (the PNR table: 20M rows, 200,000 hits
    a day at national scale; migration 0010)."""
    current = text("removed_at IS NULL")
    unique = Index(f"uq_{table}_current", "subscriber_id", *keys, unique=True,
                   sqlite_where=current, postgresql_where=current)
    columns = (*keys, "subscriber_id", *(PERIOD if covering else ()))
    by_value = (Index(f"ix_{table}_{keys[0]}", *columns),) if lookup else ()
    return (*by_value, unique)


class CodeRow(FilterRow):
    """A filter table whose value is one code of at most ``code_width`` characters,
    looked up by it (municipality, change code): declared once here, each type's table
    names itself and its width."""

    code_width: ClassVar[int]

    @declared_attr
    def code(cls) -> Mapped[str]:
        return mapped_column(String(cls.code_width))

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        return filter_indexes(cls.__tablename__, "code")


class Credential(Base):
    """An API token, stored only as a salted hash (the secret is shown once at issue)."""

    __tablename__ = "credential"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Public part of the token, used to find the row.
    token_id: Mapped[str] = mapped_column(String(32), unique=True)
    salt: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(128))
    #: ``subscriber`` (acts only for ``subscriber_id``) or ``admin``.
    role: Mapped[str] = mapped_column(String(16))
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscriber.id"))
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Certificate(Base):
    """A client certificate registered for an IT system (SF6002 over mutual TLS).

    Only its SHA-256 fingerprint (of the DER encoding, lowercase hex) identifies it; the
    subject and expiry are kept for the operator. Several may be current per system
    (rotation); removal closes the validity period. A fingerprint is current for at most
    one system (partial unique index), so a certificate names one caller.
    """

    __tablename__ = "certificate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(500))
    not_after: Mapped[dt.datetime] = mapped_column(DateTime)
    added_at: Mapped[dt.datetime] = mapped_column(DateTime)
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index("uq_certificate_current", "sha256", unique=True,
              sqlite_where=text("removed_at IS NULL"),
              postgresql_where=text("removed_at IS NULL")),
        Index("ix_certificate_subscriber_id", "subscriber_id"),
    )


class ServiceAgreement(Base):
    """A service agreement (``ServiceAgreementUUID``) registered for an IT system.

    An agreement is between one IT system and its authority, so a UUID is current for
    at most one system; removal closes the validity period.
    """

    __tablename__ = "service_agreement"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id"))
    uuid: Mapped[str] = mapped_column(String(36))
    #: Which service the agreement is for: ``sf6002`` (subscriptions) or ``sf1520``
    #: (person look-ups in the replica); a call is allowed only under its own service's.
    service: Mapped[str] = mapped_column(String(16), default="sf6002",
                                         server_default="sf6002")
    added_at: Mapped[dt.datetime] = mapped_column(DateTime)
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index("uq_service_agreement_current", "uuid", unique=True,
              sqlite_where=text("removed_at IS NULL"),
              postgresql_where=text("removed_at IS NULL")),
        Index("ix_service_agreement_subscriber_id", "subscriber_id"),
    )


class SshKey(Base):
    """An SSH public key a pick-up account logs in with (several per subscriber, for
    rotation). Stored as the canonical OpenSSH line parts; removal closes the validity
    period. A key (by its SHA-256 fingerprint) is current for at most one subscriber, so
    a login with it names one account."""

    __tablename__ = "ssh_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id"))
    #: OpenSSH key type, e.g. ``ssh-ed25519``, ``ssh-rsa``, ``ecdsa-sha2-nistp256``.
    key_type: Mapped[str] = mapped_column(String(40))
    #: The key blob, base64 as in an ``authorized_keys`` line.
    key_data: Mapped[str] = mapped_column(Text)
    #: ``SHA256:<base64>``, as ``ssh-keygen -l`` prints it.
    fingerprint: Mapped[str] = mapped_column(String(64))
    bits: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[dt.datetime] = mapped_column(DateTime)
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index("uq_ssh_key_current", "fingerprint", unique=True,
              sqlite_where=text("removed_at IS NULL"),
              postgresql_where=text("removed_at IS NULL")),
        Index("ix_ssh_key_subscriber_id", "subscriber_id"),
    )


class AuditEntry(Base):
    """One row per operation: who, when, which subscriber, what (PNRs masked), result,
    and how the caller came: ``transport`` (``rest``, ``soap``, ``cli``...), the client
    certificate's fingerprint and SF6002's ``CallersServiceCallIdentifier`` (SOAP)."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    caller: Mapped[str] = mapped_column(String(200))
    subscriber_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    operation: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(String(200))
    transport: Mapped[str | None] = mapped_column(String(16))
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(255))


class ExtractRun(Base):
    """One change extract as the service processed it (product.md §3, §6).

    ``filters_as_of`` is the snapshot instant every (re)filtering of this extract uses,
    so a re-run or re-delivery produces the same bytes; ``first_processed_at`` is when
    the extract was first processed (it goes into each ``.metadata`` file).
    ``delivered_at`` is set when the run's report marks the extract processed; the
    production-date chain check compares against the latest such extract.
    """

    __tablename__ = "extract_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_number: Mapped[str] = mapped_column(String(6))
    production_date: Mapped[dt.date] = mapped_column(Date)
    previous_date: Mapped[dt.date] = mapped_column(Date)
    file_name: Mapped[str] = mapped_column(String(100))
    extract_sha256: Mapped[str] = mapped_column(String(64))
    persons: Mapped[int] = mapped_column(Integer)
    records: Mapped[int] = mapped_column(Integer)
    first_processed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    filters_as_of: Mapped[dt.datetime] = mapped_column(DateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("task_number", "production_date",
                         name="uq_extract_run_task_number_production_date"),
    )


class Delivery(Base):
    """The delivery ledger (product.md §4): one row per extract and subscriber.

    Updated on every attempt, so it always says how often a delivery was tried and how
    the last attempt ended (``DELIVERED``, ``ALREADY_DELIVERED``, ``FAILED``, ``CONFLICT``;
    ``STARTED`` while an attempt runs, or when its worker died before recording an end).
    A pick-up delivery also records when the file became available, was first
    downloaded and was removed (:func:`~cpr_abonnement.records.ledger.record_pickup_event`).
    """

    __tablename__ = "delivery"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    extract_run_id: Mapped[int] = mapped_column(ForeignKey("extract_run.id"))
    subscriber_uuid: Mapped[str] = mapped_column(String(36))
    file_name: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    persons: Mapped[int] = mapped_column(Integer)
    records: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(800))
    attempts: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: Pick-up only: when the data file and its ``.metadata`` were both in ``IN/``.
    available_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: Pick-up only: the subscriber's first complete download of the data file.
    picked_up_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: Pick-up only: when the data file left ``IN/``, and who removed it
    #: (``subscriber`` or ``retention``).
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    removed_by: Mapped[str | None] = mapped_column(String(16))
    #: Bytes of the delivered data file (set when an attempt ends delivered; None before).
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    #: Push only: the end of the subscriber's service window the delivery last waited
    #: for (naive UTC), kept after it is delivered so the run note can say so.
    window_wait_until: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("extract_run_id", "subscriber_uuid",
                         name="uq_delivery_extract_run_id_subscriber_uuid"),
    )


class ExtractCheck(Base):
    """One examination of an inbound extract: what it was, and what the checks said.

    Written when ``parse_and_validate`` judges a file, whether it is accepted, rejected
    (quarantined) or held by a chain gap, so the operator console can show rejected
    extracts (which never get an :class:`ExtractRun`) with their broken rules, and the
    great-expectations results of every extract. ``problems`` and ``expectations`` are
    JSON lists whose texts are masked (a PNR only ever as ``010190-****``).
    """

    __tablename__ = "extract_check"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    checked_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    file_name: Mapped[str] = mapped_column(String(100))
    #: ``accepted``, ``rejected`` (quarantined) or ``held`` (valid, but a chain gap).
    verdict: Mapped[str] = mapped_column(String(16))
    task_number: Mapped[str | None] = mapped_column(String(6))
    production_date: Mapped[dt.date | None] = mapped_column(Date)
    previous_date: Mapped[dt.date | None] = mapped_column(Date)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    persons: Mapped[int | None] = mapped_column(Integer)
    records: Mapped[int | None] = mapped_column(Integer)
    #: Broken rules: ``[{"rule", "count", "line", "record_type", "field", "message"}]``.
    problems: Mapped[str] = mapped_column(Text, default="[]")
    #: GX results: ``[{"name", "column", "success", "unexpected", "examples"}]``.
    expectations: Mapped[str] = mapped_column(Text, default="[]")
    quarantined_to: Mapped[str | None] = mapped_column(String(500))


class FilterLock(Base):
    """The filter lock, which every filter change and every snapshot registration takes
    first (:func:`cpr_abonnement.store.clock.lock_filters`).

    On SQLite, updating this row takes the database's write lock for the rest of the
    transaction; on PostgreSQL an advisory lock beside it is taken, shared by changes
    of single filters and exclusive for everything else. The transaction's timestamp
    is read only after that, and ``changed_at`` holds the last exclusive holder's. So
    a filter change either commits before a snapshot instant is chosen (and is in it)
    or is stamped after it (and is never in it): re-filtering a day later reproduces
    the same selection, however long a bulk load takes to commit.
    """

    __tablename__ = "filter_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)



class ReplicaExtract(Base):
    """An extract applied to the CPR replica: a status extract (the whole population) or
    a day's change extract. The chain rule reads the newest applied production date;
    the same file again (same SHA-256) is recognised and changes nothing."""

    __tablename__ = "replica_extract"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(8))  # "status" or "change"
    production_date: Mapped[dt.date] = mapped_column(Date)
    previous_date: Mapped[dt.date | None] = mapped_column(Date)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    persons: Mapped[int] = mapped_column(Integer)
    #: Persons whose stored data this extract replaced or added.
    written: Mapped[int] = mapped_column(Integer)
    #: Persons left as they were because the replica held newer data (a backfill).
    kept_newer: Mapped[int] = mapped_column(Integer)
    applied_at: Mapped[dt.datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_replica_extract_production_date", "production_date"),)


class ReplicaPerson(Base):
    """One person's current data: the block of records as last received (bytes,
    ISO-8859-1, records joined by LF) and the fields looked up without reading it."""

    __tablename__ = "replica_person"

    pnr: Mapped[str] = mapped_column(String(10), primary_key=True)
    #: The number in force when this one was replaced (status 50/60), else NULL.
    current_pnr: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[int] = mapped_column(SmallInteger)
    municipality: Mapped[int | None] = mapped_column(SmallInteger)
    block: Mapped[bytes] = mapped_column(LargeBinary)
    #: The production date of the extract the block came from: an older extract
    #: applied later (a backfill) never replaces it.
    production_date: Mapped[dt.date] = mapped_column(Date)
    extract_id: Mapped[int] = mapped_column(ForeignKey("replica_extract.id"))

    __table_args__ = (Index("ix_replica_person_current_pnr", "current_pnr"),)


class ReplicaLookup(Base):
    """One person look-up: who asked, when, and the answer, with the PNR as a keyed
    hash (HMAC-SHA-256 under ``CPRSUB_LOOKUP_KEY``) so a citizen's access request can be
    answered for a given number and nobody can list the numbers looked up."""

    __tablename__ = "replica_lookup"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    looked_up_at: Mapped[dt.datetime] = mapped_column(DateTime)
    system: Mapped[str | None] = mapped_column(String(36))
    user_uuid: Mapped[str | None] = mapped_column(String(36))
    transport: Mapped[str] = mapped_column(String(8))
    pnr_hash: Mapped[str] = mapped_column(String(64))
    #: ``FOUND``, ``NOT FOUND``, ``OUT OF SCOPE`` or ``DENIED: <check>``.
    result: Mapped[str] = mapped_column(String(80))

    __table_args__ = (Index("ix_replica_lookup_pnr_hash", "pnr_hash", "looked_up_at"),
                      Index("ix_replica_lookup_looked_up_at", "looked_up_at"))

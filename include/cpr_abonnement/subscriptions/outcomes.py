"""What the subscription operations answer: results, filter sets, a subscriber as operators
see it, registrations. Plain values, so every transport (SOAP, REST, the CLI) renders
the same answer its own way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from cpr_abonnement import filters
from cpr_abonnement.identities.certificates import (
    CertificateInfo,
)
from cpr_abonnement.store.models import (
    Certificate,
    ServiceAgreement,
    SshKey,
    Subscriber,
)
from cpr_abonnement.subscriptions.recipient import Recipient

if TYPE_CHECKING:
    pass


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
    #: Current ServiceAgreementUUIDs (of every service).
    service_agreements: tuple[str, ...] = ()
    #: The service of each of them, as (UUID, service) in the same order.
    agreement_services: tuple[tuple[str, str], ...] = ()
    #: Current SSH keys of the pick-up account, oldest first.
    ssh_keys: tuple[RegisteredSshKey, ...] = ()
    #: Whom its person look-ups may find (:mod:`cpr_abonnement.replica.scope`).
    lookup_scope: str = "all"

    @classmethod
    def of(cls, session: Session, s: Subscriber) -> SubscriberDetails:
        certs = session.scalars(select(Certificate).where(
            Certificate.subscriber_id == s.id, Certificate.removed_at.is_(None))
            .order_by(Certificate.not_after, Certificate.sha256))
        agreements = list(session.execute(
            select(ServiceAgreement.uuid, ServiceAgreement.service).where(
                ServiceAgreement.subscriber_id == s.id, ServiceAgreement.removed_at.is_(None))
            .order_by(ServiceAgreement.uuid)).tuples())
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
            service_agreements=tuple(a for a, _ in agreements),
            agreement_services=tuple(agreements),
            ssh_keys=tuple(RegisteredSshKey(k.fingerprint, k.key_type, k.bits, k.comment,
                                            k.added_at) for k in keys),
            lookup_scope=s.lookup_scope or "all")

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
            service_agreement_services=dict(self.agreement_services),
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


#: A call made in this process (a test, a script): no transport to record.
NO_TRAIL = CallTrail()


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


# -- registration as one document (issue 15) -----------------------------------------
@dataclass(frozen=True)
class RegisterOutcome:
    """What :meth:`SubscriptionService.register` changed: ``CREATED``, ``UPDATED`` (with
    the changes, one line each) or ``UNCHANGED`` (nothing written, nothing audited)."""

    uuid: str
    result: str
    changes: tuple[str, ...] = ()

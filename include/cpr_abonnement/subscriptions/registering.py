"""Applying a registration document (issue 15): the whole truth about one IT system in one
transaction, what it no longer lists unregistered, and filters imported from
Serviceplatformen (a GetAllFiltersResponse)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cpr_abonnement import filters
from cpr_abonnement.errors import (
    FilterInputError,
    InvalidSubscriber,
    RegisteredToAnotherSystem,
    UnknownSubscriber,
)
from cpr_abonnement.filters import PNR
from cpr_abonnement.identities import certificates
from cpr_abonnement.identities.certificates import (
    CertificateInfo,
)
from cpr_abonnement.identities.ssh_keys import (
    SshKeyInfo,
)
from cpr_abonnement.onboarding.registration import render
from cpr_abonnement.store.clock import lock_filters
from cpr_abonnement.store.db import writing
from cpr_abonnement.store.models import (
    Certificate,
    ServiceAgreement,
    SshKey,
    Subscriber,
)
from cpr_abonnement.subscriptions.administration import Administration, refuse_held, store_key
from cpr_abonnement.subscriptions.base import AUDIT_SAMPLE
from cpr_abonnement.subscriptions.outcomes import (
    BulkOutcome,
    RegisterOutcome,
    Result,
    SubscriberDetails,
)

if TYPE_CHECKING:
    from cpr_abonnement.onboarding.importing import ImportPlan
    from cpr_abonnement.onboarding.registration import Document


class Registering(Administration):
    """Registration as one document, and filter imports."""


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
        """What :func:`refuse_held` refuses in ``doc`` as the database is now."""
        with Session(self.engine) as s:
            own = s.scalar(select(Subscriber.id).where(Subscriber.uuid == doc.uuid))
            try:
                refuse_held(s, doc, own)
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


def _reassigned_agreements(s: Session, sub: Subscriber, wanted: dict[str, tuple[str, str]],
                           now: dt.datetime) -> list[str]:
    """Close the current agreements whose service the document changes, so that
    :func:`_sync_rows` adds them anew for their new service (an agreement's service is
    part of what it authorises, so the change is kept in its history)."""
    rows = s.execute(select(ServiceAgreement.id, ServiceAgreement.uuid, ServiceAgreement.service)
                     .where(ServiceAgreement.subscriber_id == sub.id,
                            ServiceAgreement.removed_at.is_(None))).all()
    moved = [r for r in rows if r.uuid in wanted and wanted[r.uuid][1] != r.service]
    for r in moved:
        s.execute(update(ServiceAgreement).where(ServiceAgreement.id == r.id)
                  .values(removed_at=now))
    return [f"service agreement {r.uuid}: {r.service} -> {wanted[r.uuid][1]}" for r in moved]


def _register_fields(sub: Subscriber, doc, now: dt.datetime) -> list[str]:
    """Set the subscriber row's own fields from ``doc``; one change line per field."""

    wanted = {"name": doc.name, "serves": doc.serves, "delivery_mode": doc.mode,
              "lookup_scope": doc.lookup_scope,
              "registration": json.dumps(doc.profile(), sort_keys=True, ensure_ascii=False)}
    wanted |= doc.target_columns()
    changes = []
    for column, value in wanted.items():
        if getattr(sub, column) != value:
            setattr(sub, column, value)
            changes.append(f"set {column}" if column == "registration"
                           else f"set {column} = {value}")
    return changes


def _register_apply(svc: Registering, s: Session, doc, now: dt.datetime
                    ) -> tuple[Subscriber, list[str]]:
    """Everything :meth:`Registering.register` writes, in the caller's transaction."""
    sub = s.scalar(select(Subscriber).where(Subscriber.uuid == doc.uuid))
    refuse_held(s, doc, sub.id if sub else None)
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

    def add_agreement(agreement: tuple[str, str]) -> None:
        value, service = agreement
        refuse_owned(ServiceAgreement, ServiceAgreement.uuid, value, "service agreement")
        s.add(ServiceAgreement(subscriber_id=sub.id, uuid=value, service=service,
                               added_at=now))

    def add_certificate(cert: CertificateInfo) -> None:
        refuse_owned(Certificate, Certificate.sha256, cert.sha256, "certificate")
        s.add(Certificate(subscriber_id=sub.id, sha256=cert.sha256, subject=cert.subject,
                          not_after=cert.not_after, added_at=now))

    def add_key(key: SshKeyInfo) -> None:
        refuse_owned(SshKey, SshKey.fingerprint, key.fingerprint, "SSH key")
        store_key(s, sub, key, now)

    def unknown_certificate(sha256: str) -> None:
        raise InvalidSubscriber(f"certificates: {sha256} is not registered for this IT "
                                "system; give the certificate (PEM) itself")

    certs = {c.sha256: c for c in doc.certificates}
    certs |= {r: r for r in doc.certificate_refs}
    agreements = {a: (a, service) for a, service in doc.service_agreements}
    changes += _reassigned_agreements(s, sub, agreements, now)
    changes += _sync_rows(s, ServiceAgreement, sub, ServiceAgreement.uuid, agreements, now,
                          add_agreement, "service agreement")
    changes += _sync_rows(s, Certificate, sub, Certificate.sha256, certs, now,
                          lambda c: add_certificate(c) if isinstance(c, CertificateInfo)
                          else unknown_certificate(c), "certificate")
    changes += _sync_rows(s, SshKey, sub, SshKey.fingerprint,
                          {k.fingerprint: k for k in doc.ssh_keys}, now, add_key, "SSH key")
    return sub, changes

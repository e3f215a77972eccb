"""Administering IT systems: subscribers (add, update, disable), their client certificates
and service agreements (SF6002 over mutual TLS), their delivery mode and pick-up SSH
keys; every change audited."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from cpr_abonnement import filters
from cpr_abonnement.delivery import modes
from cpr_abonnement.errors import (
    InvalidDeliveryMode,
    InvalidSubscriber,
    RegisteredToAnotherSystem,
    SubscriberExists,
    UnknownSubscriber,
)
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
from cpr_abonnement.pickup.names import validate_account_name
from cpr_abonnement.replica.scope import validate_scope
from cpr_abonnement.store.clock import lock_filters
from cpr_abonnement.store.db import writing
from cpr_abonnement.store.models import (
    AuditEntry,
    Certificate,
    DeliverySetting,
    ServiceAgreement,
    SshKey,
    Subscriber,
)
from cpr_abonnement.subscriptions import rules
from cpr_abonnement.subscriptions.base import ServiceBase
from cpr_abonnement.subscriptions.outcomes import (
    Registration,
    Result,
    SubscriberDetails,
    SubscriberUpdate,
)
from cpr_abonnement.subscriptions.rules import (
    DEFAULT_AGREEMENT_SERVICE,
    validate_agreement,
    validate_agreement_service,
    validate_uuid,
)

log = logging.getLogger(__name__)


if TYPE_CHECKING:
    from cpr_abonnement.onboarding.registration import Document


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


def _account_for(spec: modes.ModeSpec, account: str | None, uuid: str) -> str | None:
    """The pick-up account of a new subscriber: given or its UUID; none for a mode
    without accounts (push)."""
    _refuse_account_unless_used(spec, account)
    if not spec.has_account:
        return None
    return validate_account_name(account) if account else uuid


def _refuse_account_unless_used(spec: modes.ModeSpec, account: str | None) -> None:
    """A pick-up account given for a mode without accounts is a mistake, not ignored."""
    if account is not None and not spec.has_account:
        raise InvalidDeliveryMode(f"a pick-up account is for delivery mode "
                                  f"{', '.join(modes.with_accounts())}, not {spec.name}")


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


def refuse_held(s: Session, doc: Document, own_id: int | None) -> None:
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


def store_key(s: Session, sub: Subscriber, key: SshKeyInfo, now: dt.datetime) -> None:
    s.add(SshKey(subscriber_id=sub.id, key_type=key.key_type, key_data=key.key_data,
                 fingerprint=key.fingerprint, bits=key.bits, comment=key.comment,
                 added_at=now))


class Administration(ServiceBase):
    """The operator's side of the service."""

    # -- subscribers ---------------------------------------------------------------
    def add_subscriber(self, uuid: str, name: str, *, serves: str | None = None,
                       sftp_conn_id: str | None = None, remote_dir: str = ".",
                       service_agreements: Sequence[str] = (), delivery_mode: str = modes.DEFAULT,
                       pickup_account: str | None = None,
                       ssh_keys: Sequence[str | bytes] = ()) -> SubscriberDetails:
        """Register an IT system (and its service agreements and SSH keys, in the same
        transaction). A ``pickup`` subscriber's account defaults to its UUID."""
        uuid = validate_uuid(uuid)
        if not name.strip():
            raise InvalidSubscriber("a subscriber needs a name")
        remote_dir = rules.remote_dir(remote_dir)
        agreements = list(dict.fromkeys(validate_agreement(a) for a in service_agreements))
        spec = modes.get(delivery_mode)
        mode = spec.name
        account = _account_for(spec, pickup_account, uuid)
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
                store_key(s, sub, key, now)
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
                          remote_dir: str | None = None, lookup_scope: str | None = None
                          ) -> SubscriberUpdate:
        """Re-point an IT system: its name, what it serves, its push target (Airflow
        connection id, remote directory), whom its person look-ups may find
        (``lookup_scope``). Only the fields given change; filters, credentials, keys and
        history stay. Audited ``UpdateSubscriber`` with the values before and after, so
        the trail says what changed when."""
        def validate() -> dict[str, str]:
            wanted = {"name": name.strip() if name is not None else None, "serves": serves,
                      "sftp_conn_id": sftp_conn_id,
                      "remote_dir": rules.remote_dir(remote_dir) if remote_dir is not None
                      else None, "lookup_scope": lookup_scope}
            if name is not None and not wanted["name"]:
                raise InvalidSubscriber("a subscriber needs a name")
            if sftp_conn_id is not None and not sftp_conn_id.strip():
                raise InvalidSubscriber("an SFTP connection id may not be empty")
            if lookup_scope is not None:
                validate_scope(lookup_scope)
            given = {k: v for k, v in wanted.items() if v is not None}
            if not given:
                raise InvalidSubscriber("nothing to update: give a name, serves, an SFTP "
                                        "connection id, a remote dir or a look-up scope")
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
            "remote_dir": remote_dir, "lookup_scope": lookup_scope}}
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
                            now: dt.datetime, service: str = DEFAULT_AGREEMENT_SERVICE
                            ) -> Registration:
        owner = self._owner(s, ServiceAgreement, ServiceAgreement.uuid, agreement)
        if owner is not None:
            if owner[0] != sub.id:
                # Within add_subscriber: refuse the whole registration.
                raise RegisteredToAnotherSystem(
                    f"service agreement {agreement} is already registered for IT system "
                    f"{owner[1]}", what="service agreement", owner=owner[1])
            held = s.scalar(select(ServiceAgreement.service).where(
                ServiceAgreement.uuid == agreement, ServiceAgreement.removed_at.is_(None)))
            if held != service:
                return Registration(Result.ALREADY_EXISTED, warning=(
                    f"service agreement {agreement} is registered for {held}; remove it "
                    f"first to register it for {service}"))
            return Registration(Result.ALREADY_EXISTED)
        s.add(ServiceAgreement(subscriber_id=sub.id, uuid=agreement, service=service,
                               added_at=now))
        return Registration(Result.ADDED)

    def add_service_agreement(self, system: str, agreement: str,
                              service: str = DEFAULT_AGREEMENT_SERVICE) -> Registration:
        """Register a ServiceAgreementUUID for ``system``, for ``service`` (``sf6002``:
        subscriptions; ``sf1520``: person look-ups). An agreement authorises calls to
        its own service only."""
        def apply(s: Session, sub: Subscriber, value: tuple[str, str], now: dt.datetime
                  ) -> Registration:
            owner = self._owner(s, ServiceAgreement, ServiceAgreement.uuid, value[0])
            if owner is not None and owner[0] != sub.id:
                return Registration(Result.ALREADY_EXISTED, owner[1])
            return self._register_agreement(s, sub, value[0], now, value[1])
        return self._registration("service agreement", system, "AddServiceAgreement",
                                  {"service_agreement": str(agreement)[:80],
                                   **({"service": str(service)[:20]}
                                      if service != DEFAULT_AGREEMENT_SERVICE else {})},
                                  lambda: (validate_agreement(agreement),
                                           validate_agreement_service(service)), apply)

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
            SshKey.fingerprint, store_key)

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
        def validate() -> tuple[modes.ModeSpec, str | None, str | None, str | None]:
            chosen = modes.get(mode)
            _refuse_account_unless_used(chosen, pickup_account)
            return (chosen,
                    validate_account_name(pickup_account) if pickup_account else None,
                    sftp_conn_id, rules.remote_dir(remote_dir) if remote_dir else None)

        def apply(s: Session, sub: Subscriber, value: tuple, now: dt.datetime) -> _Switch:
            chosen, account, conn, directory = value
            if chosen.has_account:
                account = account or sub.pickup_account or sub.uuid
                owner = _account_owner(s, account, sub.id)
                if owner is not None:
                    return _Switch(SubscriberDetails.of(s, sub), account, owner)
                sub.pickup_account = account
            elif chosen.needs_connection and not (conn or sub.sftp_conn_id):
                raise InvalidDeliveryMode(f"delivery mode {chosen.name} needs an SFTP "
                                          "connection (--sftp-conn-id)")
            sub.delivery_mode = chosen.name
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


    def record_readiness(self, uuid: str, result: str) -> None:
        """Audit a readiness check (``cprsub subscriber check``) and its outcome."""
        with writing(self.engine) as s:
            self._audit(s, uuid, "ReadinessCheck", {}, result, self._now(s))

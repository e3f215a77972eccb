"""One authorisation for every transport (issue 12, item 7).

The REST and SOAP adapters prove *who* is calling in their own way (a bearer token; a
client certificate from the TLS handshake or a trusted proxy) and hand it over as a
:class:`CallerIdentity`, with the call's :class:`CallContext` (SF6002's
InvocationContext). :func:`authorise` decides whether that caller may act for the
context's IT system and returns the only thing the operations can be run through: a
:class:`~cpr_abonnement.subscriptions.service.SubscriptionService` bound to that
caller, whose audit rows record the transport, the certificate fingerprint and the
``CallersServiceCallIdentifier``. A transport that skipped :func:`authorise` would have
no service to call.

Checks (each refusal is one audit row ``DENIED: <check>`` and :class:`NotAuthorised`):

* REST: the token's IT system is the context's (``token of another IT system``);
  administrators may act for any system; operations on subscribers themselves need an
  administrator (:func:`authorise_admin`: ``administrator required``).
* SOAP: the certificate is registered (``certificate not registered``; removed ones
  are not), for the context's ``UserSystemUUID`` (``certificate of another IT
  system``), that system is active (``IT system disabled``), the context's
  ``ServiceAgreementUUID`` is registered for it *for the service called*
  (``service agreement``: an SF1520 agreement never authorises SF6002 calls, nor the
  reverse), and ``ServiceUUID`` is that service's (``service uuid``). The
  registration is read from
  :data:`~cpr_abonnement.identities.certificates.registrations` (a change made
  through the service in this process counts at once, one made elsewhere within
  :data:`~cpr_abonnement.identities.certificates.REGISTRATION_SECONDS`).
* Person look-ups (:func:`authorise_lookup`, SF1520 and ``GET /v1/persons/{pnr}``):
  over SOAP the same certificate checks under SF1520's agreement and ServiceUUID;
  over REST the token's own IT system (``IT system token``: an administrator's token
  names none), active (``IT system disabled``), holding a current SF1520 agreement
  (``service agreement``).
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cpr_abonnement.errors import NotAuthorised
from cpr_abonnement.identities.certificates import Registered, registrations
from cpr_abonnement.identities.credentials import Principal, Role
from cpr_abonnement.store.models import Certificate, ServiceAgreement, Subscriber
from cpr_abonnement.subscriptions.outcomes import CallTrail
from cpr_abonnement.subscriptions.service import SubscriptionService

#: ServiceUUID of SF6002 CprSubscriptionService at Serviceplatformen.
SF6002_SERVICE_UUID = "9cdccc2f-3243-11e2-8fef-d4bed98c5934"
REST, SOAP = "rest", "soap"


@dataclass(frozen=True)
class Service:
    """A Serviceplatformen service an IT system holds agreements for: calls to it are
    allowed only under an agreement for it (``ServiceAgreement.service``) and with its
    ServiceUUID in the InvocationContext."""

    name: str    # as stored in service_agreement.service
    title: str   # as fault texts name it
    uuid: str


SF6002 = Service("sf6002", "SF6002 CprSubscriptionService", SF6002_SERVICE_UUID)


def sf1520(service_uuid: str) -> Service:
    """SF1520 PersonBaseDataExtended, whose ServiceUUID is a setting
    (``CPRSUB_SF1520_SERVICE_UUID``; serviceplatformen-compat.md §4 says why)."""
    return Service("sf1520", "SF1520 PersonBaseDataExtended", service_uuid)
#: The REST messages as before this module (clients and tests read them).
_REST_OTHER_SYSTEM = "invocationContext.userSystemUUID is not the authenticated IT system"
_REST_ADMIN = "administrator credential required"


@dataclass(frozen=True)
class CallerIdentity:
    """Who is calling, as the transport proved it."""

    transport: str                            # "rest" or "soap"
    principal: Principal | None = None        # REST: the bearer token's principal
    certificate_sha256: str | None = None     # SOAP: lowercase hex SHA-256 of the DER cert


@dataclass(frozen=True)
class CallContext:
    """SF6002's InvocationContext (REST sends only userSystemUUID)."""

    user_system_uuid: str
    service_agreement_uuid: str | None = None
    user_uuid: str | None = None
    service_uuid: str | None = None
    callers_service_call_identifier: str | None = None


def _uuid(value: str | None) -> str | None:
    """A UUID in canonical form (lowercase, hyphenated); other text as given."""
    if value is None:
        return None
    try:
        return str(uuidlib.UUID(value.strip()))
    except ValueError:
        return value


def _caller_name(caller: CallerIdentity, owner: str | None = None) -> str:
    """How the audit trail's ``caller`` column names this caller."""
    if caller.principal is not None:
        return caller.principal.caller
    sha = (caller.certificate_sha256 or "none")[:16]
    return f"{caller.transport}:{owner or 'unregistered'}:{sha}"


def _trail(caller: CallerIdentity, context: CallContext | None) -> CallTrail:
    return CallTrail(caller.transport, caller.certificate_sha256,
                     context.callers_service_call_identifier if context else None)


def _service(engine: Engine, caller: CallerIdentity, context: CallContext | None,
             owner: str | None = None) -> SubscriptionService:
    return SubscriptionService(engine, caller=_caller_name(caller, owner),
                               trail=_trail(caller, context))


def _refuse(service: SubscriptionService, system: str | None, operation: str, check: str,
            message: str) -> NotAuthorised:
    service.record_denied(system, operation, check)
    return NotAuthorised(message, check=check, system=system)


def _token_check(principal: Principal | None, system: str) -> tuple[str, str] | None:
    """(check, message) refusing a REST caller, or None."""
    if principal is None:
        return "no credential", "no bearer token"
    if principal.role is Role.ADMIN or principal.subscriber_uuid == system:
        return None
    return "token of another IT system", _REST_OTHER_SYSTEM


def _registered(engine: Engine, sha256: str) -> Registered | None:
    """The IT system of a current certificate, from memory if read recently
    (:data:`~cpr_abonnement.identities.certificates.registrations`)."""
    def load() -> Registered | None:
        with Session(engine) as s:
            row = s.execute(
                select(Subscriber.id, Subscriber.uuid, Subscriber.active)
                .join(Certificate, Certificate.subscriber_id == Subscriber.id)
                .where(Certificate.sha256 == sha256, Certificate.removed_at.is_(None))
            ).first()
            if row is None:
                return None
            agreements = s.execute(select(ServiceAgreement.uuid, ServiceAgreement.service)
                                   .where(ServiceAgreement.subscriber_id == row.id,
                                          ServiceAgreement.removed_at.is_(None)))
            return Registered(row.uuid, bool(row.active),
                              frozenset((a.uuid, a.service) for a in agreements))
    return registrations.lookup((engine.url, sha256), load)


def _certificate_check(engine: Engine, sha256: str | None, context: CallContext,
                       service: Service = SF6002
                       ) -> tuple[str | None, tuple[str, str] | None]:
    """(certificate's system, refusal (check, message) or None) for a SOAP caller."""
    system = _uuid(context.user_system_uuid)
    found = _registered(engine, sha256.lower()) if sha256 else None
    if found is None:
        return None, ("certificate not registered",
                      "the client certificate is not registered for any IT system")
    if found.owner != system:
        return found.owner, ("certificate of another IT system",
                             "the client certificate is registered for another IT system "
                             "than the InvocationContext's UserSystemUUID")
    if not found.active:
        return found.owner, ("IT system disabled", "the IT system is disabled")
    if (_uuid(context.service_agreement_uuid), service.name) not in found.agreements:
        return found.owner, ("service agreement", "the InvocationContext's "
                             "ServiceAgreementUUID is not a service agreement registered "
                             f"for this IT system for {service.title}")
    if _uuid(context.service_uuid) != service.uuid:
        return found.owner, ("service uuid", "the InvocationContext's ServiceUUID is not "
                             f"{service.title}'s ({service.uuid})")
    return found.owner, None


def authorise(engine: Engine, caller: CallerIdentity, context: CallContext, operation: str
              ) -> SubscriptionService:
    """The service acting for ``context.user_system_uuid`` on behalf of ``caller``, after
    every check of its transport; on refusal one ``DENIED: <check>`` audit row (with
    transport, certificate fingerprint and call identifier) and :class:`NotAuthorised`.
    """
    system = _uuid(context.user_system_uuid)
    owner = None
    if caller.transport == REST:
        refusal = _token_check(caller.principal, system or "")
    elif caller.transport == SOAP:
        owner, refusal = _certificate_check(engine, caller.certificate_sha256, context)
    else:
        raise ValueError(f"unknown transport {caller.transport!r}")
    service = _service(engine, caller, context, owner)
    if refusal is not None:
        raise _refuse(service, system, operation, *refusal)
    return service


def _rest_lookup_check(engine: Engine, principal: Principal | None, service: Service
                       ) -> tuple[str | None, tuple[str, str] | None]:
    """(the token's IT system, refusal or None) for a REST look-up: REST sends no
    InvocationContext, so the system is the token's and any current agreement of the
    system for ``service`` will do."""
    if principal is None:
        return None, ("no credential", "no bearer token")
    system = principal.subscriber_uuid
    if system is None:
        return None, ("IT system token", "a person look-up is made for an IT system: use "
                      "that system's token (an administrator's names none)")
    with Session(engine) as s:
        sub = s.execute(select(Subscriber.id, Subscriber.active)
                        .where(Subscriber.uuid == system)).first()
        held = sub is not None and s.scalar(select(ServiceAgreement.id).where(
            ServiceAgreement.subscriber_id == sub.id, ServiceAgreement.service == service.name,
            ServiceAgreement.removed_at.is_(None)).limit(1)) is not None
    if sub is not None and not sub.active:
        return system, ("IT system disabled", "the IT system is disabled")
    if not held:
        return system, ("service agreement", "the IT system holds no current service "
                        f"agreement for {service.title}")
    return system, None


def authorise_lookup(engine: Engine, caller: CallerIdentity, context: CallContext | None,
                     service: Service, operation: str = "PersonLookup") -> str:
    """The IT system a person look-up is made for, after every check of its transport
    under ``service``'s agreement; on refusal one ``DENIED: <check>`` audit row and
    :class:`NotAuthorised` (whose ``system`` the caller's look-up log names).

    Apart from :func:`authorise` because a look-up acts on no filters: it needs the
    system, not a subscription service.
    """
    if caller.transport == SOAP and context is not None:
        system = _uuid(context.user_system_uuid)
        owner, refusal = _certificate_check(engine, caller.certificate_sha256, context,
                                            service)
    elif caller.transport == REST:
        owner, refusal = _rest_lookup_check(engine, caller.principal, service)
        system = owner
    else:
        raise ValueError(f"a {caller.transport!r} look-up needs its transport's proof")
    if refusal is not None:
        raise _refuse(_service(engine, caller, context, owner), system, operation, *refusal)
    return system or ""


def authorise_admin(engine: Engine, caller: CallerIdentity, operation: str,
                    system: str | None = None) -> SubscriptionService:
    """The service for an administrator's operation (on ``system``, if it names one);
    any other caller is refused (``administrator required``) and audited."""
    service = _service(engine, caller, None)
    principal = caller.principal
    if principal is None or principal.role is not Role.ADMIN:
        raise _refuse(service, _uuid(system), operation, "administrator required",
                      _REST_ADMIN)
    return service

"""One authorisation for every transport (issue 12, item 7): each check of
:func:`authorise`, with certificates made in the test, on SQLite and PostgreSQL.

Every refusal must leave exactly one audit row ``DENIED: <check>`` carrying the
transport, the certificate fingerprint and the call identifier, and change nothing.
"""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cpr_abonnement.api.auth import (
    SF6002_SERVICE_UUID,
    CallContext,
    CallerIdentity,
    authorise,
    authorise_admin,
)
from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.errors import NotAuthorised
from cpr_abonnement.filters.pnr import PnrFilter
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.store.models import AuditEntry
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import test_ca  # noqa: F401  (fixture)

A = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
B = "0d4c3b2a-1111-4222-8333-444455556666"
AGREEMENT_A = "11111111-2222-4333-8444-555555555555"
AGREEMENT_B = "66666666-7777-4888-9999-aaaaaaaaaaaa"
CALL_ID = "call-0001"
PNR = "0101901234"


@dataclasses.dataclass
class World:
    engine: object
    certs: dict[str, str]
    principals: dict[str, credentials.Principal]

    def soap(self, cert: str | None) -> CallerIdentity:
        return CallerIdentity("soap", certificate_sha256=self.certs.get(cert) if cert else None)


def context(system: str = A, agreement: str | None = AGREEMENT_A,
            service: str | None = SF6002_SERVICE_UUID) -> CallContext:
    return CallContext(system, service_agreement_uuid=agreement,
                       user_uuid="99999999-0000-4000-8000-000000000000",
                       service_uuid=service, callers_service_call_identifier=CALL_ID)


@pytest.fixture
def world(engine, test_ca):  # noqa: F811
    svc = SubscriptionService(engine, caller="setup")
    svc.add_subscriber(A, "Aalborg ESDH", service_agreements=[AGREEMENT_A])
    svc.add_subscriber(B, "Odense Sag", service_agreements=[AGREEMENT_B])
    made = {name: test_ca.client(name) for name in ("a", "b", "a-removed", "stranger")}
    svc.add_certificate(A, made["a"].pem)
    svc.add_certificate(B, made["b"].pem)
    svc.add_certificate(A, made["a-removed"].pem)
    svc.remove_certificate(A, made["a-removed"].sha256)
    tokens = {"a": credentials.issue(engine, role=Role.SUBSCRIBER, label="a",
                                     subscriber_uuid=A),
              "admin": credentials.issue(engine, role=Role.ADMIN, label="ops")}
    principals = {k: credentials.authenticate(engine, t) for k, t in tokens.items()}
    return World(engine, {k: v.sha256 for k, v in made.items()}, principals)


def last_audit(engine) -> AuditEntry:
    with Session(engine) as s:
        return s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()


def pnr_filters(engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(PnrFilter))


def test_soap_caller_with_everything_registered_acts_and_is_audited(world):
    svc = authorise(world.engine, world.soap("a"), context(), "AddPNRSubscription")
    assert svc.add_pnr(A, PNR).result.value == "ADDED"
    row = last_audit(world.engine)
    assert (row.operation, row.result, row.transport, row.certificate_sha256, row.call_id) == (
        "AddPNRSubscription", "ADDED", "soap", world.certs["a"], CALL_ID)
    # Every audit text column is scrubbed of PNR-shaped runs, and a random fingerprint's
    # digits can form one: the caller is the scrubbed form, whatever the certificate.
    assert row.caller == scrub(f"soap:{A}:{world.certs['a'][:16]}")


def test_context_uuids_in_upper_case_are_the_same_uuids(world):
    ctx = context(A.upper(), AGREEMENT_A.upper(), SF6002_SERVICE_UUID.upper())
    assert authorise(world.engine, world.soap("a"), ctx, "GetAllFilters") is not None


@pytest.mark.parametrize(("cert", "ctx", "check"), [
    ("b", context(), "certificate of another IT system"),
    ("stranger", context(), "certificate not registered"),
    ("a-removed", context(), "certificate not registered"),
    (None, context(), "certificate not registered"),
    ("a", context(agreement=AGREEMENT_B), "service agreement"),
    ("a", context(agreement=None), "service agreement"),
    ("a", context(service="9cdccc2f-3243-11e2-8fef-d4bed98c5935"), "service uuid"),
    ("a", context(service=None), "service uuid"),
])
def test_each_soap_refusal_names_its_check_is_audited_and_changes_nothing(world, cert, ctx,
                                                                         check):
    with pytest.raises(NotAuthorised) as refused:
        authorise(world.engine, world.soap(cert), ctx, "AddPNRSubscription")
    assert refused.value.check == check
    row = last_audit(world.engine)
    assert (row.operation, row.subscriber_uuid, row.result, row.transport,
            row.certificate_sha256, row.call_id) == (
        "AddPNRSubscription", A, f"DENIED: {check}", "soap",
        world.certs[cert] if cert else None, CALL_ID)
    assert pnr_filters(world.engine) == 0


def test_a_disabled_systems_certificate_is_refused(world):
    SubscriptionService(world.engine, caller="ops").set_active(A, False)
    with pytest.raises(NotAuthorised) as refused:
        authorise(world.engine, world.soap("a"), context(), "GetAllFilters")
    assert refused.value.check == "IT system disabled"


def test_a_removed_service_agreement_no_longer_authorises(world):
    authorise(world.engine, world.soap("a"), context(), "GetAllFilters")
    SubscriptionService(world.engine, caller="ops").remove_service_agreement(A, AGREEMENT_A)
    with pytest.raises(NotAuthorised, match="ServiceAgreementUUID"):
        authorise(world.engine, world.soap("a"), context(), "GetAllFilters")


def test_rest_token_of_another_system_is_refused_and_admin_may_act(world):
    rest_a = CallerIdentity("rest", principal=world.principals["a"])
    with pytest.raises(NotAuthorised) as refused:
        authorise(world.engine, rest_a, CallContext(B), "AddPNRSubscription")
    assert refused.value.check == "token of another IT system"
    row = last_audit(world.engine)
    assert (row.caller, row.subscriber_uuid, row.result, row.transport) == (
        f"api:{A}:a", B, "DENIED: token of another IT system", "rest")
    svc = authorise(world.engine, rest_a, CallContext(A), "AddPNRSubscription")
    svc.add_pnr(A, PNR)
    assert (last_audit(world.engine).transport, last_audit(world.engine).result) == (
        "rest", "ADDED")
    admin = CallerIdentity("rest", principal=world.principals["admin"])
    authorise(world.engine, admin, CallContext(B), "GetAllFilters").get_all_filters(B)
    assert last_audit(world.engine).caller == "api:admin:ops"


def test_administrator_operations_need_an_administrator(world):
    for caller in (CallerIdentity("rest", principal=world.principals["a"]), world.soap("a")):
        with pytest.raises(NotAuthorised) as refused:
            authorise_admin(world.engine, caller, "DisableSubscriber", B)
        assert refused.value.check == "administrator required"
        assert last_audit(world.engine).result == "DENIED: administrator required"
    admin = CallerIdentity("rest", principal=world.principals["admin"])
    assert authorise_admin(world.engine, admin, "ListSubscribers").subscribers()

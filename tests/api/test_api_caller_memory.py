"""Issue 16, item 2: who is calling is read from memory under load, and still
follows every change.

REST: a token verified moments ago is answered on the event loop, without a worker
thread; revoking it in this process refuses the very next request.

SOAP: every call asked the database which IT system its certificate belongs to, whether
that system is active and which service agreements it has (a session and two queries
per call). :data:`cpr_abonnement.identities.certificates.registrations` now keeps
the answer for a short lifetime. What must hold:

* a change made through the service in this process (certificate or agreement
  removed, system disabled, agreement added) counts at the very next call;
* a change made by another process (``cprsub`` in a subprocess) counts within
  :data:`~cpr_abonnement.identities.certificates.REGISTRATION_SECONDS`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event

from cpr_abonnement.api.app import create_app
from cpr_abonnement.api.auth import SF6002_SERVICE_UUID, CallContext, CallerIdentity, authorise
from cpr_abonnement.errors import NotAuthorised
from cpr_abonnement.identities import certificates, credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import test_ca  # noqa: F401  (fixture)
from support.servers import uvicorn_server

A = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
AGREEMENT = "11111111-2222-4333-8444-555555555555"
NEW_AGREEMENT = "66666666-7777-4888-9999-aaaaaaaaaaaa"
ROOT = Path(__file__).resolve().parents[2]


def context(agreement: str = AGREEMENT) -> CallContext:
    return CallContext(A, service_agreement_uuid=agreement, service_uuid=SF6002_SERVICE_UUID)


@pytest.fixture
def caller(engine, test_ca) -> CallerIdentity:  # noqa: F811
    svc = SubscriptionService(engine, caller="setup")
    svc.add_subscriber(A, "Aalborg ESDH", service_agreements=[AGREEMENT])
    made = test_ca.client("Aalborg ESDH")
    svc.add_certificate(A, made.pem)
    return CallerIdentity("soap", certificate_sha256=made.sha256)


def refusal(engine, caller: CallerIdentity, ctx: CallContext | None = None) -> str | None:
    """The check that refuses ``caller`` now, or None when it is authorised."""
    try:
        authorise(engine, caller, ctx or context(), "GetAllFilters")
    except NotAuthorised as e:
        return e.check
    return None


def test_a_known_callers_registration_is_not_read_again(engine, caller):
    authorise(engine, caller, context(), "AddPNRSubscription")
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_: statements.append(sql))
    authorise(engine, caller, context(), "AddPNRSubscription")
    assert not [s for s in statements if "certificate" in s or "service_agreement" in s]


CHANGES = {
    "certificate removed": (lambda svc, c: svc.remove_certificate(A, c.certificate_sha256),
                            "certificate not registered"),
    "IT system disabled": (lambda svc, _: svc.set_active(A, False), "IT system disabled"),
    "agreement removed": (lambda svc, _: svc.remove_service_agreement(A, AGREEMENT),
                          "service agreement"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_through_the_service_counts_at_the_next_call(engine, caller, change):
    apply, check = CHANGES[change]
    assert refusal(engine, caller) is None  # read once: now remembered
    apply(SubscriptionService(engine, caller="ops"), caller)
    assert refusal(engine, caller) == check


def test_an_agreement_added_through_the_service_counts_at_the_next_call(engine, caller):
    assert refusal(engine, caller, context(NEW_AGREEMENT)) == "service agreement"
    assert refusal(engine, caller) is None  # remembered, without the new agreement
    SubscriptionService(engine, caller="ops").add_service_agreement(A, NEW_AGREEMENT)
    assert refusal(engine, caller, context(NEW_AGREEMENT)) is None


def test_another_process_removing_the_certificate_counts_within_the_lifetime(
        engine, caller, monkeypatch):
    # The clock stands still until the lifetime is meant to pass: the other process
    # takes seconds to start on a loaded machine, longer than the lifetime itself.
    now = time.monotonic()
    monkeypatch.setattr(certificates.registrations, "clock", lambda: now)
    assert refusal(engine, caller) is None
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from cpr_abonnement.cli import main; "
         "sys.exit(main())", "subscriber", "remove-certificate",
         "--db", engine.url.render_as_string(hide_password=False), "--uuid", A,
         "--fingerprint", caller.certificate_sha256],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "include")})
    assert done.stdout == "REMOVED\n", done.stderr
    assert refusal(engine, caller) is None  # remembered: the lifetime has not passed
    later = now + certificates.REGISTRATION_SECONDS + 1
    monkeypatch.setattr(certificates.registrations, "clock", lambda: later)
    assert refusal(engine, caller) == "certificate not registered"


def test_a_token_revoked_in_this_process_is_refused_at_the_next_request(engine, caller):
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="esdh", subscriber_uuid=A)
    call = {"json": {"invocationContext": {"userSystemUUID": A}},
            "headers": {"Authorization": f"Bearer {token}"}}
    with uvicorn_server(create_app(lambda: engine)) as base, httpx.Client() as http:
        assert http.post(base + "/v1/GetAllFilters", **call).status_code == 200
        assert http.post(base + "/v1/GetAllFilters", **call).status_code == 200  # remembered
        credentials.revoke(engine, token.split("_")[1])
        assert http.post(base + "/v1/GetAllFilters", **call).status_code == 401

"""Hostile API calls (issue 10, items 11, 13, 14, 15), over real HTTP, SQLite and PostgreSQL.

Every test reads the audit table back from the database: what the API answers and
what it keeps must both be free of PNRs, and refusals must leave a trace.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cpr_abonnement.api.app import create_app
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.store.models import AuditEntry
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.servers import uvicorn_server

pytestmark = pytest.mark.slow

A = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
B = "0d4c3b2a-1111-4222-8333-444455556666"
#: Synthetic PNRs sent where no PNR belongs.
STRAY = ("0101901234", "1502504321", "2902004000")


def forms(pnr: str) -> tuple[str, str]:
    """The two ways a PNR is written in clear: ``DDMMYYSSSS`` and ``DDMMYY-SSSS``."""
    return pnr, f"{pnr[:6]}-{pnr[6:]}"


def assert_no_pnr(text: str, where: str) -> None:
    leaked = [f for p in STRAY for f in forms(p) if f in text]
    assert not leaked, f"{where} holds a PNR in clear ({len(leaked)} occurrence(s))"


def audit_rows(engine) -> list[AuditEntry]:
    with Session(engine) as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def audit_text(engine) -> str:
    """Every column of every audit row, as one text."""
    return "\n".join(
        " | ".join(str(getattr(r, c.key)) for c in AuditEntry.__table__.columns)
        for r in audit_rows(engine))


@pytest.fixture
def api(engine):
    svc = SubscriptionService(engine, caller="setup")
    svc.add_subscriber(A, "Aalborg ESDH")
    svc.add_subscriber(B, "Odense Sag")
    tokens = {
        "a": credentials.issue(engine, role=Role.SUBSCRIBER, label="a", subscriber_uuid=A),
        "admin": credentials.issue(engine, role=Role.ADMIN, label="ops"),
    }
    with uvicorn_server(create_app(lambda: engine)) as url:
        yield url, tokens, engine


def post(api, who: str, path: str, body: dict) -> httpx.Response:
    url, tokens, _ = api
    return httpx.post(f"{url}/v1/{path}", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {tokens[who]}"})


def call(api, who: str, op: str, system: str = A, **fields) -> httpx.Response:
    return post(api, who, op, {"invocationContext": {"userSystemUUID": system}, **fields})


P1, P2, P3 = STRAY
PNR_IN_THE_WRONG_FIELD = [
    ("AddMunicipalityCodeSubscription", {"municipalityCode": P1}),
    ("RemoveMunicipalityCodeSubscription", {"municipalityCode": forms(P2)[1]}),
    ("AddChangeCodeSubscription", {"changeCode": P1}),
    ("RemoveChangeCodeSubscription", {"changeCode": forms(P3)[1]}),
    ("RemoveAll", {"filterGroup": P2}),
    ("AddAgeRangeSubscription", {"startAge": int(P2), "endAge": 17}),
    ("RemoveAgeRangeSubscription", {"startAge": 0, "endAge": int(P2)}),
    ("AddAgeRangeSubscription", {"startAge": P3, "endAge": 17}),
    ("AddPNRSubscription", {"pnr": P1 + "9"}),
    ("AddPNRSubscription", {"pnr": int(P2)}),
    ("AddPNRSubscriptions", {"pnrs": [P1, int(P3)]}),
    ("GetAllFilters", {"asOf": forms(P1)[1]}),
    ("AddPNRSubscription", {"pnr": P1, P3: "extra field named by a PNR"}),
]


@pytest.mark.parametrize(("op", "fields"), PNR_IN_THE_WRONG_FIELD,
                         ids=[f"{op}-{next(iter(f))}" for op, f in PNR_IN_THE_WRONG_FIELD])
def test_a_pnr_in_any_rejected_argument_is_masked_in_response_and_audit(api, op, fields):
    r = call(api, "a", op, **fields)
    assert r.status_code == 422, (op, r.status_code)
    assert_no_pnr(r.text, f"the {op} response")
    assert_no_pnr(audit_text(api[2]), "the audit table")


def test_a_rejected_argument_is_audited_masked_but_recognisable(api):
    r = call(api, "a", "AddMunicipalityCodeSubscription", municipalityCode=P1)
    assert r.json()["rule"] == "municipality code"
    assert "010190-****" in r.json()["detail"]
    last = audit_rows(api[2])[-1]
    assert last.operation == "AddMunicipalityCodeSubscription"
    assert last.result.startswith("REJECTED: municipality code")
    assert "010190-****" in last.arguments and "010190-****" in last.result


def test_a_pnr_sent_to_the_admin_api_is_masked(api):
    r = post(api, "admin", "admin/subscribers",
             {"uuid": "99999999-8888-4777-8666-555555555555", "name": "x",
              "remoteDir": f"../{P1}"})
    assert r.status_code == 422
    assert_no_pnr(r.text, "the admin response")
    assert_no_pnr(audit_text(api[2]), "the audit table")


# -- item 13: refusals leave an audit row --------------------------------------------

def test_a_denied_cross_tenant_call_is_audited(api):
    before = len(audit_rows(api[2]))
    r = call(api, "a", "AddPNRSubscription", B, pnr=P1)
    assert r.status_code == 403
    rows = audit_rows(api[2])[before:]
    assert [(e.caller, e.subscriber_uuid, e.operation, e.result, e.transport)
            for e in rows] == [
        (f"api:{A}:a", B, "AddPNRSubscription", "DENIED: token of another IT system", "rest")]
    assert r.json() == {
        "detail": "invocationContext.userSystemUUID is not the authenticated IT system"}
    assert_no_pnr(audit_text(api[2]), "the audit table")


def test_a_denied_admin_call_is_audited(api):
    before = len(audit_rows(api[2]))
    r = post(api, "a", f"admin/subscribers/{B}/disable", {})
    assert r.status_code == 403
    rows = audit_rows(api[2])[before:]
    assert [(e.caller, e.subscriber_uuid, e.operation, e.result, e.transport)
            for e in rows] == [
        (f"api:{A}:a", B, "DisableSubscriber", "DENIED: administrator required", "rest")]
    assert r.json() == {"detail": "administrator credential required"}


def test_allowed_calls_are_audited_with_transport_rest(api):
    before = len(audit_rows(api[2]))
    assert call(api, "a", "AddPNRSubscription", A, pnr=P1).status_code == 200
    assert [(e.operation, e.transport) for e in audit_rows(api[2])[before:]] == [
        ("AddPNRSubscription", "rest")]


# -- item 14: booleans are not ages --------------------------------------------------

@pytest.mark.parametrize("ages", [{"startAge": True, "endAge": 17},
                                  {"startAge": 0, "endAge": False},
                                  {"startAge": "5", "endAge": 17}])
def test_booleans_and_strings_are_not_ages(api, ages):
    r = call(api, "a", "AddAgeRangeSubscription", **ages)
    assert r.status_code == 422
    field = next(k for k, v in ages.items() if type(v) is not int)
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert call(api, "a", "GetAllFilters").json()["age_ranges"] == []


# -- item 15: remote directories stay inside the subscriber's folder -----------------

@pytest.mark.parametrize("remote_dir", [f"../../{B}", "in/../../x", "/cpr/../etc",
                                        "..", "in\\..\\..\\x", "in\x00x", "in\nx"])
def test_admin_refuses_a_remote_dir_that_leaves_the_folder(api, remote_dir):
    new = "99999999-8888-4777-8666-555555555555"
    r = post(api, "admin", "admin/subscribers",
             {"uuid": new, "name": "Vejle", "remoteDir": remote_dir})
    assert r.status_code == 422
    assert r.json()["rule"] == "remote dir"
    assert "'..'" in r.json()["detail"] or "control" in r.json()["detail"] or (
        "backslash" in r.json()["detail"])
    listed = httpx.get(f"{api[0]}/v1/admin/subscribers", timeout=30,
                       headers={"Authorization": f"Bearer {api[1]['admin']}"}).json()
    assert new not in {s["uuid"] for s in listed}


def test_admin_stores_a_remote_dir_normalised(api):
    r = post(api, "admin", "admin/subscribers",
             {"uuid": "99999999-8888-4777-8666-555555555555", "name": "Vejle",
              "remoteDir": "./cpr//in/"})
    assert r.status_code == 201 and r.json()["remoteDir"] == "cpr/in"

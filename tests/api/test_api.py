"""The REST API over real HTTP: authentication, isolation, the operations, bad input."""

from __future__ import annotations

import re

import httpx
import pytest

from cpr_abonnement.api.app import create_app
from cpr_abonnement.filters import TYPES
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.servers import uvicorn_server

A = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
B = "0d4c3b2a-1111-4222-8333-444455556666"
PNR = "0101901234"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('api') / 'filters.db'}")
    upgrade(engine)
    svc = SubscriptionService(engine, caller="setup")
    svc.add_subscriber(A, "Aalborg ESDH")
    svc.add_subscriber(B, "Odense Sag")
    tokens = {
        "a": credentials.issue(engine, role=Role.SUBSCRIBER, label="a", subscriber_uuid=A),
        "b": credentials.issue(engine, role=Role.SUBSCRIBER, label="b", subscriber_uuid=B),
        "admin": credentials.issue(engine, role=Role.ADMIN, label="ops"),
    }
    with uvicorn_server(create_app(lambda: engine)) as url:
        yield url, tokens, engine


@pytest.fixture(autouse=True)
def no_filters(api):
    """The tests share one server (it costs a start each); each starts with no current
    filter, whatever ran before it (the order is random)."""
    svc = SubscriptionService(api[2], caller="setup")
    for system in (A, B):
        for ftype in TYPES:
            svc.remove_all(system, ftype.group)


def call(api, who: str | None, op: str, system: str, **body) -> httpx.Response:
    url, tokens, _ = api
    headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
    return httpx.post(f"{url}/v1/{op}", headers=headers, timeout=30,
                      json={"invocationContext": {"userSystemUUID": system}, **body})


def test_all_ten_operations_over_http(api):
    r = call(api, "a", "AddPNRSubscription", A, pnr=PNR)
    assert r.status_code == 200 and r.json() == {"result": "ADDED", "warning": None}
    assert call(api, "a", "AddPNRSubscription", A, pnr=PNR).json()["result"] == (
        "ALREADY_EXISTED")
    assert call(api, "a", "AddAgeRangeSubscription", A, startAge=0, endAge=17).json()[
        "result"] == "ADDED"
    assert call(api, "a", "AddMunicipalityCodeSubscription", A,
                municipalityCode="851").json()["result"] == "ADDED"
    warned = call(api, "a", "AddChangeCodeSubscription", A, changeCode="Q77").json()
    assert warned["result"] == "ADDED" and "not in the known list" in warned["warning"]
    filters = call(api, "a", "GetAllFilters", A).json()
    assert filters["pnrs"] == [PNR] and filters["municipality_codes"] == ["0851"]
    assert filters["age_ranges"] == [{"start_age": 0, "end_age": 17}]
    assert filters["change_codes"] == ["Q77"] and filters["receives_nothing"] is False
    assert call(api, "a", "RemovePNRSubscription", A, pnr=PNR).json()["result"] == "REMOVED"
    assert call(api, "a", "RemovePNRSubscription", A, pnr=PNR).json()["result"] == (
        "NON_EXISTING_PNR")
    assert call(api, "a", "RemoveAgeRangeSubscription", A, startAge=0, endAge=17).json()[
        "result"] == "REMOVED"
    assert call(api, "a", "RemoveMunicipalityCodeSubscription", A,
                municipalityCode="0851").json()["result"] == "REMOVED"
    assert call(api, "a", "RemoveChangeCodeSubscription", A, changeCode="Q77").json()[
        "result"] == "REMOVED"
    assert call(api, "a", "RemoveAll", A, filterGroup="PNR").json() == {"removed": 0}
    assert call(api, "a", "GetAllFilters", A).json()["receives_nothing"] is True


def test_bulk_over_http(api):
    r = call(api, "b", "AddPNRSubscriptions", B, pnrs=["1502504321", "x", "1502504321"])
    assert r.json() == {"counts": {"ADDED": 1, "ALREADY_EXISTED": 1, "REJECTED": 1},
                        "results": ["ADDED", r.json()["results"][1], "ALREADY_EXISTED"]}
    assert r.json()["results"][1].startswith("REJECTED")
    r = call(api, "b", "RemovePNRSubscriptions", B, pnrs=["1502504321"])
    assert r.json()["counts"] == {"REMOVED": 1}


def test_isolation_between_subscribers(api):
    call(api, "b", "AddPNRSubscription", B, pnr="2902004000")
    for op, body in [("GetAllFilters", {}), ("AddPNRSubscription", {"pnr": PNR}),
                     ("RemoveAll", {"filterGroup": "PNR"})]:
        r = call(api, "a", op, B, **body)
        assert r.status_code == 403, op
        assert "not the authenticated IT system" in r.json()["detail"]
    assert call(api, "b", "GetAllFilters", B).json()["pnrs"] == ["2902004000"]
    assert call(api, "admin", "GetAllFilters", B).json()["pnrs"] == ["2902004000"]


def test_authentication_failures(api):
    url, tokens, engine = api
    assert call(api, None, "GetAllFilters", A).status_code == 401
    r = httpx.post(f"{url}/v1/GetAllFilters", headers={"Authorization": "Bearer nope"},
                   json={"invocationContext": {"userSystemUUID": A}})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    forged = tokens["a"].rsplit("_", 1)[0] + "_" + "x" * 43
    r = httpx.post(f"{url}/v1/GetAllFilters", headers={"Authorization": f"Bearer {forged}"},
                   json={"invocationContext": {"userSystemUUID": A}})
    assert r.status_code == 401
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="old", subscriber_uuid=A)
    assert credentials.revoke(engine, token.split("_")[1])
    r = httpx.post(f"{url}/v1/GetAllFilters", headers={"Authorization": f"Bearer {token}"},
                   json={"invocationContext": {"userSystemUUID": A}})
    assert r.status_code == 401


def test_bad_input_is_422_naming_the_rule_and_never_echoes_a_pnr(api):
    for body, op, rule in [
        ({"pnr": "3102901234"}, "AddPNRSubscription", "PNR"),
        ({"startAge": 9, "endAge": 3}, "AddAgeRangeSubscription", "age range"),
        ({"municipalityCode": "12345"}, "AddMunicipalityCodeSubscription", "municipality code"),
        ({"changeCode": "AA1"}, "AddChangeCodeSubscription", "event code"),
        ({"filterGroup": "All"}, "RemoveAll", "filter group"),
    ]:
        r = call(api, "a", op, A, **body)
        assert r.status_code == 422 and r.json()["rule"] == rule, op
        assert "3102901234" not in r.text
    r = call(api, "a", "AddPNRSubscription", A, pnr=1502504321)  # schema: not a string
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "pnr"
    assert not re.search(r"\d{10}", r.text)
    assert call(api, "a", "GetAllFilters", A).json()["pnrs"] == []


def test_administration(api):
    url, tokens, _ = api
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    new = "99999999-8888-4777-8666-555555555555"
    assert httpx.post(f"{url}/v1/admin/subscribers", headers={
        "Authorization": f"Bearer {tokens['a']}"}, json={"uuid": new, "name": "x"}
    ).status_code == 403
    r = httpx.post(f"{url}/v1/admin/subscribers", headers=admin,
                   json={"uuid": new, "name": "Vejle Borger", "sftpConnId": "sftp_vejle"})
    assert r.status_code == 201 and r.json()["active"] is True
    assert httpx.post(f"{url}/v1/admin/subscribers", headers=admin,
                      json={"uuid": new, "name": "again"}).status_code == 409
    token = httpx.post(f"{url}/v1/admin/subscribers/{new}/credentials", headers=admin,
                       json={"label": "prod"}).json()["token"]
    r = call((url, {"new": token}, None), "new", "AddAgeRangeSubscription", new,
             startAge=60, endAge=120)
    assert r.json()["result"] == "ADDED"
    r = httpx.post(f"{url}/v1/admin/subscribers/{new}/disable", headers=admin)
    assert r.json()["active"] is False
    r = call((url, {"new": token}, None), "new", "GetAllFilters", new)
    assert r.status_code == 401  # a disabled IT system's token stops working
    assert new in {s["uuid"] for s in httpx.get(f"{url}/v1/admin/subscribers",
                                                headers=admin).json()}
    r = call(api, "admin", "GetAllFilters", "12345678-1234-4234-8234-123456789012")
    assert r.status_code == 404


def test_openapi_documents_every_operation_with_examples(api):
    url, _, _ = api
    spec = httpx.get(f"{url}/openapi.json").json()
    ops = {p.rsplit("/", 1)[-1] for p in spec["paths"]}
    assert {"AddPNRSubscription", "RemovePNRSubscription", "AddAgeRangeSubscription",
            "RemoveAgeRangeSubscription", "AddMunicipalityCodeSubscription",
            "RemoveMunicipalityCodeSubscription", "AddChangeCodeSubscription",
            "RemoveChangeCodeSubscription", "RemoveAll", "GetAllFilters",
            "AddPNRSubscriptions", "RemovePNRSubscriptions"} <= ops
    assert spec["components"]["schemas"]["PnrCall"]["properties"]["pnr"]["examples"]


@pytest.mark.parametrize(("op", "body"), [
    ("AddPNRSubscription", {"pnr": "1502504321"}), ("GetAllFilters", {}),
    ("RemovePNRSubscription", {"pnr": "1502504321"}),
    ("AddMunicipalityCodeSubscription", {"municipalityCode": "851"}),
    ("RemoveAll", {"filterGroup": "MunicipalityCode"}),
])
def test_an_operation_hands_work_to_the_thread_pool_once(api, monkeypatch, op, body):
    """A plain ``def`` endpoint costs two hand-offs (FastAPI validates its answer in
    another pool thread); under load those cost more than the call's SQL."""
    import anyio.to_thread

    monkeypatch.setattr(credentials, "VERIFIED_TOKEN_SECONDS", 600)  # outlives a slow run
    credentials.forget_subscriber(B)   # remembered afresh, for that long
    assert call(api, "b", "GetAllFilters", B).status_code == 200   # token remembered
    handed: list[object] = []
    real = anyio.to_thread.run_sync

    async def counted(func, *args, **kwargs):
        handed.append(func)
        return await real(func, *args, **kwargs)
    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    assert call(api, "b", op, B, **body).status_code == 200
    assert len(handed) == 1

"""No PNR where it must not be (issue 21 item 11): a PNR typed into a URL is masked in
the access log of ``cprsub api serve`` (uvicorn's) and of Airflow's API server (its
``HttpAccessLogMiddleware``), and in the audit row of a refused administrator call."""

from __future__ import annotations

import httpx
import pytest
import structlog.testing
from fastapi.testclient import TestClient

from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.servers import api_serve

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
PNR = "0101901234"
#: The PNR as typed in a path, in a query, spaced and percent-encoded.
URLS = (f"/v1/admin/subscribers/{PNR}/disable?fingerprint={PNR}",
        "/v1/admin/subscribers/010190%201234/disable?fingerprint=010190+1234")


@pytest.fixture
def filters(sqlite_url):
    """The filter database with one IT system and its (subscriber, not admin) token."""
    engine = make_engine(sqlite_url)
    upgrade(engine)
    SubscriptionService(engine, caller="test").add_subscriber(SYS, "Aalborg ESDH")
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="t", subscriber_uuid=SYS)
    yield engine, token
    engine.dispose()


def assert_masked(text: str) -> None:
    assert "010190-****" in text
    for typed in (PNR, "010190 1234", "010190%201234", "010190+1234"):
        assert typed not in text, f"{typed[:6]}-**** unmasked in the log"


def test_cprsub_api_serve_logs_and_audits_no_pnr(filters, sqlite_url, tmp_path):
    engine, token = filters
    log = tmp_path / "server.log"
    with api_serve(["--db", sqlite_url], log) as (base, _), httpx.Client() as http:
        for url in URLS:
            r = http.post(base + url, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 403 and PNR not in r.text
    assert log.read_text().count("/disable") == 2
    assert_masked(log.read_text())
    denied = [e for e in SubscriptionService(engine, caller="t").audit_trail()
              if e.result.startswith("DENIED")]
    assert [e.subscriber_uuid for e in denied] == ["010190-****"] * 2


def test_airflow_api_server_logs_no_pnr(filters, sqlite_url, monkeypatch):
    _, token = filters
    monkeypatch.setenv("CPRSUB_DB_URL", sqlite_url)
    from airflow.api_fastapi.app import create_app

    app = create_app(apps="core")
    (mounted,) = [r.app for r in app.routes if getattr(r, "path", "") == "/cpr-abonnement"]
    for made in ("engine", "replica"):  # this test's database (see test_api_plugin)
        mounted.state.cpr.__dict__.pop(made, None)
    with TestClient(app) as client, structlog.testing.capture_logs() as logged:
        for url in URLS:
            r = client.post("/cpr-abonnement" + url,
                            headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 403
    access = [e for e in logged if e.get("event") == "request finished"]
    assert len(access) == 2
    assert_masked(repr(access))

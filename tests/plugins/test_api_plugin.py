"""The subscription API as Airflow's API server mounts it (plugin, no Airflow auth)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"


@pytest.fixture
def airflow_api(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'filters.db'}"
    monkeypatch.setenv("CPRSUB_DB_URL", url)
    engine = make_engine(url)
    upgrade(engine)
    SubscriptionService(engine, caller="test").add_subscriber(SYS, "Aalborg ESDH")
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="t", subscriber_uuid=SYS)
    from airflow.api_fastapi.app import create_app

    app = create_app(apps="core")
    # The plugin's app lives as long as the process and opens its database on first
    # use: forget the previous test's engine so this test's CPRSUB_DB_URL is used. Taken
    # from the mount itself: Airflow's plugin loader may hold another module object than
    # `import cpr_api` here, depending on what loaded plugins earlier in the session.
    (mounted,) = [r.app for r in app.routes if getattr(r, "path", "") == "/cpr-abonnement"]
    for made in ("engine", "replica"):
        mounted.state.cpr.__dict__.pop(made, None)
    with TestClient(app) as client:
        yield client, token


def test_plugin_mounts_the_api_and_it_authenticates_itself(airflow_api):
    client, token = airflow_api
    assert client.get("/cpr-abonnement/v1/health").json() == {"status": "ok"}
    body = {"invocationContext": {"userSystemUUID": SYS}, "pnr": "0101901234"}
    assert client.post("/cpr-abonnement/v1/AddPNRSubscription", json=body).status_code == 401
    r = client.post("/cpr-abonnement/v1/AddPNRSubscription", json=body,
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["result"] == "ADDED"


def test_mounted_api_authenticates_before_reading_and_caps_bodies(airflow_api):
    """Issue 10, item 12, under Airflow's API server: the guard sits inside the mount."""
    client, token = airflow_api
    url = "/cpr-abonnement/v1/AddPNRSubscriptions"
    big = b"[" + b"0" * (17 * 1024 * 1024) + b"]"  # over the default 16 MiB cap
    r = client.post(url, content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client.post(url, content=big, headers={"Content-Type": "application/json",
                                               "Authorization": f"Bearer {token}"})
    assert r.status_code == 413 and "CPRSUB_API_MAX_BODY_BYTES" in r.json()["detail"]


def test_plugin_serves_the_sf6002_endpoint_under_its_prefix(airflow_api):
    """Issue 12, item 1: the SOAP endpoint and its WSDL under Airflow's mount; without a
    proxy header configured, a call without a client certificate is a soap:Client fault."""
    client, _ = airflow_api
    wsdl = client.get("/cpr-abonnement/service/CPRSubscription/CPRSubscription/1/?wsdl")
    assert wsdl.status_code == 200
    assert ('location="http://testserver/cpr-abonnement/service/CPRSubscription/'
            'CPRSubscription/1/"') in wsdl.text
    assert client.get("/cpr-abonnement/service/CPRSubscription/CPRSubscription/1/"
                      "PNR.xsd").status_code == 200
    r = client.post("/cpr-abonnement/service/CPRSubscription/CPRSubscription/1/",
                    content=b"<x/>", headers={"Content-Type": "text/xml"})
    assert r.status_code == 500 and b"no client certificate" in r.content

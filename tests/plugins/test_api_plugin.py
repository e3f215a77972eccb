"""The subscription API as Airflow's API server mounts it (plugin, no Airflow auth)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cpr_abonnement.subscriptions import credentials
from cpr_abonnement.subscriptions.credentials import Role
from cpr_abonnement.subscriptions.db import make_engine, upgrade
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

    with TestClient(create_app(apps="core")) as client:
        yield client, token


def test_plugin_mounts_the_api_and_it_authenticates_itself(airflow_api):
    client, token = airflow_api
    assert client.get("/cpr-abonnement/v1/health").json() == {"status": "ok"}
    body = {"invocationContext": {"userSystemUUID": SYS}, "pnr": "0101901234"}
    assert client.post("/cpr-abonnement/v1/AddPNRSubscription", json=body).status_code == 401
    r = client.post("/cpr-abonnement/v1/AddPNRSubscription", json=body,
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["result"] == "ADDED"

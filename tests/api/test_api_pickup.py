"""Administration of pick-up over real HTTP: delivery mode, account, SSH keys."""

from __future__ import annotations

import httpx
import pytest

from cpr_abonnement.api.app import create_app
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.identities.ssh_keys import parse_public_key
from cpr_abonnement.pickup import accounts
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.servers import uvicorn_server
from support.sshkeys import ed25519_line, rsa_line

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
OTHER = "0d4c3b2a-1111-4222-8333-444455556666"


@pytest.fixture
def api(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'filters.db'}")
    upgrade(engine)
    SubscriptionService(engine, caller="setup").add_subscriber(OTHER, "Odense Sag")
    admin = credentials.issue(engine, role=Role.ADMIN, label="ops")
    other = credentials.issue(engine, role=Role.SUBSCRIBER, label="o", subscriber_uuid=OTHER)
    with uvicorn_server(create_app(lambda: engine)) as url:
        client = httpx.Client(base_url=f"{url}/v1/admin", timeout=30,
                              headers={"Authorization": f"Bearer {admin}"})
        yield client, engine, other
        client.close()


def test_pickup_administration(api):
    client, engine, _ = api
    key, rotated = ed25519_line("one"), rsa_line(2048, "two")
    r = client.post("/subscribers", json={"uuid": SYS, "name": "Herning Sag",
                                          "deliveryMode": "pickup", "sshKeys": [key]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["deliveryMode"], body["pickupAccount"]) == ("pickup", SYS)
    assert [k["fingerprint"] for k in body["sshKeys"]] == [parse_public_key(key).fingerprint]
    r = client.post(f"/subscribers/{SYS}/ssh-keys", json={"key": rotated})
    assert r.json()["result"] == "ADDED" and len(r.json()["subscriber"]["sshKeys"]) == 2
    r = client.delete(f"/subscribers/{SYS}/ssh-keys",
                      params={"fingerprint": parse_public_key(key).fingerprint})
    assert r.json()["result"] == "REMOVED"
    assert accounts.authorized_keys(engine, SYS) == [rotated]
    r = client.post(f"/subscribers/{SYS}/delivery",
                    json={"deliveryMode": "push", "sftpConnId": "sftp_herning"})
    assert r.status_code == 200 and r.json()["deliveryMode"] == "push"
    assert accounts.authorized_keys(engine, SYS) == []
    listed = {s["uuid"]: s for s in client.get("/subscribers").json()}
    assert listed[SYS]["deliveryMode"] == "push" and len(listed[SYS]["sshKeys"]) == 1


def test_refusals(api):
    client, _, other_token = api
    r = client.post(f"/subscribers/{OTHER}/ssh-keys", json={"key": rsa_line(1024)})
    assert r.status_code == 422 and r.json()["rule"] == "ssh key"
    assert "1024 bits" in r.json()["detail"]
    r = client.post(f"/subscribers/{OTHER}/delivery",
                    json={"deliveryMode": "pickup", "pickupAccount": "../x"})
    assert r.status_code == 422 and r.json()["rule"] == "pickup account"
    r = client.post(f"/subscribers/{OTHER}/ssh-keys", json={"key": ed25519_line()},
                    headers={"Authorization": f"Bearer {other_token}"})
    assert r.status_code == 403  # an IT system cannot register keys, not even its own


def test_system_and_foreign_unix_account_names_are_refused(api, foreign_account):
    """Issue 21, item 7, over REST: adding a subscriber and switching one to pick-up."""
    client, _, _ = api
    for name in ("root", "nobody", "airflow", foreign_account):
        r = client.post("/subscribers", json={"uuid": SYS, "name": "Herning Sag",
                                              "deliveryMode": "pickup", "pickupAccount": name})
        assert r.status_code == 422 and r.json()["rule"] == "pickup account", (name, r.text)
        r = client.post(f"/subscribers/{OTHER}/delivery",
                        json={"deliveryMode": "pickup", "pickupAccount": name})
        assert r.status_code == 422 and r.json()["rule"] == "pickup account", (name, r.text)
        assert f"pick-up account '{name}' is" in r.json()["detail"]
    listed = {s["uuid"]: s for s in client.get("/subscribers").json()}
    assert SYS not in listed and listed[OTHER]["deliveryMode"] == "push"

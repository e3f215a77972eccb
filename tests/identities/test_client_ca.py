"""A client certificate is registered only if the client CA the TLS end trusts issued it
(issue 21 item 5): the CLI, the admin REST API and the registration document refuse
another CA's certificate (rule ``certificate``); with no CA configured the CLI says the
issuer went unchecked."""

from __future__ import annotations

import httpx
import pytest

from cpr_abonnement.api.app import create_app
from cpr_abonnement.cli import main
from cpr_abonnement.errors import InvalidRegistration
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.onboarding.registration import parse_document
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import TestCA
from support.servers import uvicorn_server
from support.sshkeys import ed25519_line

A = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def cas(tmp_path, monkeypatch):
    """Ours (configured as CPRSUB_CLIENT_CA) and a stranger's."""
    ours, stranger = TestCA(), TestCA()
    monkeypatch.setenv("CPRSUB_CLIENT_CA", str(ours.write(tmp_path, "client-ca")))
    return ours, stranger


def test_cli_refuses_a_certificate_another_ca_issued(db_url, tmp_path, capsys, cas,
                                                     monkeypatch):
    ours, stranger = cas
    assert main(["db", "upgrade", "--db", db_url]) == 0
    assert main(["subscriber", "add", "--db", db_url, "--uuid", A, "--name", "Aalborg"]) == 0
    foreign, _ = stranger.client("Aalborg ESDH").write(tmp_path, "foreign")
    own, _ = ours.client("Aalborg ESDH").write(tmp_path, "own")
    capsys.readouterr()

    def add(cert) -> tuple[int, str, str]:
        code = main(["subscriber", "add-certificate", "--db", db_url, "--uuid", A,
                     "--cert", str(cert)])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, _, err = add(foreign)
    assert code == 1 and "certificate" in err and "not the configured client CA" in err
    assert add(own)[:2] == (0, "ADDED\n")
    monkeypatch.delenv("CPRSUB_CLIENT_CA")
    code, out, err = add(foreign)
    assert (code, out) == (0, "ADDED\n") and "issuer was not checked" in err


def test_rest_and_the_registration_document_refuse_it_too(engine, cas):
    ours, stranger = cas
    SubscriptionService(engine, caller="setup").add_subscriber(A, "Aalborg ESDH")
    admin = {"Authorization": "Bearer " + credentials.issue(engine, role=Role.ADMIN,
                                                             label="ops")}
    foreign = stranger.client("Aalborg ESDH").pem.decode()
    with uvicorn_server(create_app(lambda: engine)) as url:
        r = httpx.post(f"{url}/v1/admin/subscribers/{A}/certificates", headers=admin,
                       json={"pem": foreign})
        assert r.status_code == 422 and r.json()["rule"] == "certificate"
        r = httpx.post(f"{url}/v1/admin/subscribers/{A}/certificates", headers=admin,
                       json={"pem": ours.client("Aalborg ESDH").pem.decode()})
        assert r.status_code == 200 and "warning" not in r.json()
    doc = {"uuid": A, "name": "Aalborg ESDH", "municipality": 851,
           "supplier": {"name": "Systemleverandøren A/S", "cvr": "10150817"},
           "contact": {"name": "Jens Hansen", "email": "jens@leverandor.example",
                       "phone": "+45 12 34 56 78"},
           "delivery": {"mode": "push", "connection": "sftp_aalborg", "host": "sftp.example",
                        "folder": "/cpr/in", "host_key": ed25519_line("host")},
           "certificates": [foreign]}
    with pytest.raises(InvalidRegistration, match="not the configured client CA") as refused:
        parse_document(doc)
    assert refused.value.field == "certificates[0]"

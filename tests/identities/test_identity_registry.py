"""Certificates and service agreements per IT system (issue 12, item 5): the service,
``cprsub subscriber ...`` and the admin REST API, on SQLite and PostgreSQL; every
change audited."""

from __future__ import annotations

import json

import httpx
import pytest

from cpr_abonnement.api.app import create_app
from cpr_abonnement.cli import main
from cpr_abonnement.errors import (
    InvalidCertificate,
    InvalidServiceAgreement,
    RegisteredToAnotherSystem,
)
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.store.db import make_engine
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import test_ca  # noqa: F401  (fixture)
from support.servers import uvicorn_server

A = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
B = "0d4c3b2a-1111-4222-8333-444455556666"
AGREEMENT = "11111111-2222-4333-8444-555555555555"
OTHER_AGREEMENT = "66666666-7777-4888-9999-aaaaaaaaaaaa"


@pytest.fixture
def svc(engine):
    service = SubscriptionService(engine, caller="ops")
    service.add_subscriber(A, "Aalborg ESDH")
    service.add_subscriber(B, "Odense Sag")
    return service


def results(svc: SubscriptionService, system: str) -> list[tuple[str, str]]:
    return [(e.operation, e.result) for e in svc.audit_trail(system)]


def test_certificates_several_per_system_and_one_system_per_certificate(svc, test_ca):  # noqa: F811
    old, new = test_ca.client("ESDH 2025"), test_ca.client("ESDH 2026")
    assert svc.add_certificate(A, old.pem).result.value == "ADDED"
    assert svc.add_certificate(A, new.pem.decode()).result.value == "ADDED"
    assert svc.add_certificate(A, old.pem).result.value == "ALREADY_EXISTED"
    with pytest.raises(RegisteredToAnotherSystem, match=A) as taken:
        svc.add_certificate(B, old.pem)
    assert taken.value.owner == A
    listed = svc.subscriber(A).certificates
    assert {c.sha256 for c in listed} == {old.sha256, new.sha256}
    assert {c.subject for c in listed} == {"CN=ESDH 2025,O=CPR Abonnement test",
                                           "CN=ESDH 2026,O=CPR Abonnement test"}
    assert all(c.not_after == old.cert.not_valid_after_utc.replace(tzinfo=None)
               for c in listed if c.sha256 == old.sha256)
    assert svc.subscriber(B).certificates == ()
    colons = ":".join(old.sha256[i:i + 2] for i in range(0, 64, 2)).upper()
    assert svc.remove_certificate(A, colons).result.value == "REMOVED"
    assert svc.remove_certificate(A, old.sha256).result.value == "NON_EXISTING"
    assert [c.sha256 for c in svc.subscriber(A).certificates] == [new.sha256]
    assert svc.add_certificate(B, old.pem).result.value == "ADDED"  # free again
    assert results(svc, B)[-2:] == [
        ("AddCertificate", f"REFUSED: registered for IT system {A}"),
        ("AddCertificate", "ADDED")]
    assert [r for r in results(svc, A) if "Certificate" in r[0]] == [
        ("AddCertificate", "ADDED"), ("AddCertificate", "ADDED"),
        ("AddCertificate", "ALREADY_EXISTED"), ("RemoveCertificate", "REMOVED"),
        ("RemoveCertificate", "NON_EXISTING")]


def test_what_is_not_a_client_certificate_is_refused_and_audited(svc, test_ca):  # noqa: F811
    client = test_ca.client("x")
    refused = {
        b"not a certificate at all": "not a certificate",
        client.key_pem: "not a certificate",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n": "not a certificate",
        client.pem + test_ca.pem: "holds 2 certificates",
        test_ca.pem: "CA certificate",
    }
    for data, why in refused.items():
        with pytest.raises(InvalidCertificate, match=why):
            svc.add_certificate(A, data)
    assert svc.subscriber(A).certificates == ()
    assert len([e for e in svc.audit_trail(A) if e.operation == "AddCertificate"]) == 5
    assert all(e.result.startswith("REJECTED: certificate: ")
               for e in svc.audit_trail(A) if e.operation == "AddCertificate")
    with pytest.raises(InvalidCertificate, match="64 hexadecimal"):
        svc.remove_certificate(A, "abc")
    # The key and a certificate in one file (a common client.pem): the certificate counts.
    assert svc.add_certificate(A, client.key_pem + client.pem).result.value == "ADDED"


def test_an_expired_certificate_is_refused(svc, engine, test_ca):  # noqa: F811
    client = test_ca.client("x", days=1)
    expiry = client.cert.not_valid_after_utc.replace(tzinfo=None)
    later = SubscriptionService(engine, caller="ops", clock=lambda: expiry)
    with pytest.raises(InvalidCertificate, match="expired"):
        later.add_certificate(A, client.pem)
    assert svc.add_certificate(A, client.pem).result.value == "ADDED"


def test_service_agreements(svc):
    info = svc.add_subscriber("aaaaaaaa-0000-4000-8000-000000000001", "New",
                              service_agreements=[AGREEMENT.upper(), AGREEMENT])
    assert info.service_agreements == (AGREEMENT,)
    with pytest.raises(RegisteredToAnotherSystem):
        svc.add_subscriber("aaaaaaaa-0000-4000-8000-000000000002", "Clash",
                           service_agreements=[AGREEMENT])
    assert "aaaaaaaa-0000-4000-8000-000000000002" not in {s.uuid for s in svc.subscribers()}
    assert results(svc, "aaaaaaaa-0000-4000-8000-000000000002") == [(
        "AddSubscriber", f"REFUSED: service agreement {AGREEMENT} is already registered for "
        "IT system aaaaaaaa-0000-4000-8000-000000000001")]
    assert svc.add_service_agreement(A, OTHER_AGREEMENT).result.value == "ADDED"
    assert svc.add_service_agreement(A, OTHER_AGREEMENT).result.value == "ALREADY_EXISTED"
    with pytest.raises(RegisteredToAnotherSystem):
        svc.add_service_agreement(B, OTHER_AGREEMENT)
    with pytest.raises(InvalidServiceAgreement, match="is not a UUID"):
        svc.add_service_agreement(A, "0101901234")
    assert svc.subscriber(A).service_agreements == (OTHER_AGREEMENT,)
    assert svc.remove_service_agreement(A, OTHER_AGREEMENT).result.value == "REMOVED"
    assert svc.remove_service_agreement(A, OTHER_AGREEMENT).result.value == "NON_EXISTING"
    assert [r for r in results(svc, A) if "ServiceAgreement" in r[0]] == [
        ("AddServiceAgreement", "ADDED"), ("AddServiceAgreement", "ALREADY_EXISTED"),
        ("AddServiceAgreement", "REJECTED: service agreement: ServiceAgreementUUID "
                                "'010190-****' is not a UUID"),
        ("RemoveServiceAgreement", "REMOVED"), ("RemoveServiceAgreement", "NON_EXISTING")]


def test_cli_registers_lists_and_removes(db_url, tmp_path, capsys, test_ca):  # noqa: F811
    def cli(*args: str) -> tuple[int, str, str]:
        code = main([args[0], args[1], "--db", db_url, *args[2:]])
        out = capsys.readouterr()
        return code, out.out, out.err

    assert cli("db", "upgrade")[0] == 0
    assert cli("subscriber", "add", "--uuid", A, "--name", "Aalborg ESDH",
               "--service-agreement", AGREEMENT, "--service-agreement", OTHER_AGREEMENT)[0] == 0
    assert cli("subscriber", "add", "--uuid", B, "--name", "Odense Sag")[0] == 0
    client = test_ca.client("Aalborg ESDH")
    cert, _ = client.write(tmp_path, "client")
    assert cli("subscriber", "add-certificate", "--uuid", A, "--cert", str(cert))[1] == "ADDED\n"
    code, _, err = cli("subscriber", "add-certificate", "--uuid", B, "--cert", str(cert))
    assert code == 1 and f"already registered for IT system {A}" in err
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    code, _, err = cli("subscriber", "add-certificate", "--uuid", A, "--cert", str(junk))
    assert code == 1 and "not a certificate" in err
    out = cli("subscriber", "list")[1]
    assert f"certificate {client.sha256}" in out and "CN=Aalborg ESDH" in out
    assert f"service agreement {AGREEMENT}" in out
    listed = {s["uuid"]: s for s in json.loads(cli("subscriber", "list", "--json")[1])}
    assert listed[A]["service_agreements"] == sorted([AGREEMENT, OTHER_AGREEMENT])
    assert [c["sha256"] for c in listed[A]["certificates"]] == [client.sha256]
    assert listed[B]["certificates"] == [] and listed[B]["service_agreements"] == []
    assert cli("subscriber", "remove-service-agreement", "--uuid", A, "--agreement",
               OTHER_AGREEMENT)[1] == "REMOVED\n"
    assert cli("subscriber", "add-service-agreement", "--uuid", B, "--agreement",
               OTHER_AGREEMENT)[1] == "ADDED\n"
    assert cli("subscriber", "remove-certificate", "--uuid", A, "--cert",
               str(cert))[1] == "REMOVED\n"
    assert cli("subscriber", "remove-certificate", "--uuid", A, "--fingerprint",
               client.sha256)[1] == "NON_EXISTING\n"
    trail = SubscriptionService(make_engine(db_url), caller="t").audit_trail(A)
    assert {e.transport for e in trail} == {"cli"}


def test_admin_rest_api(engine, test_ca):  # noqa: F811
    svc = SubscriptionService(engine, caller="setup")
    svc.add_subscriber(A, "Aalborg ESDH")
    admin = {"Authorization": "Bearer " + credentials.issue(engine, role=Role.ADMIN,
                                                             label="ops")}
    own = {"Authorization": "Bearer " + credentials.issue(
        engine, role=Role.SUBSCRIBER, label="a", subscriber_uuid=A)}
    client = test_ca.client("Aalborg ESDH")
    with uvicorn_server(create_app(lambda: engine)) as url:
        base = f"{url}/v1/admin/subscribers"
        r = httpx.post(base, headers=admin, json={"uuid": B, "name": "Odense",
                                                  "serviceAgreements": [AGREEMENT]})
        assert r.status_code == 201 and r.json()["serviceAgreements"] == [AGREEMENT]
        assert r.json()["certificates"] == []
        r = httpx.post(f"{base}/{A}/certificates", headers=admin,
                       json={"pem": client.pem.decode()})
        assert r.status_code == 200 and r.json()["result"] == "ADDED"
        assert r.json()["subscriber"]["certificates"] == [{
            "sha256": client.sha256, "subject": "CN=Aalborg ESDH,O=CPR Abonnement test",
            "notAfter": client.cert.not_valid_after_utc.replace(tzinfo=None).isoformat()}]
        r = httpx.post(f"{base}/{B}/certificates", headers=admin,
                       json={"pem": client.pem.decode()})
        assert r.status_code == 409 and A in r.json()["detail"]
        r = httpx.post(f"{base}/{A}/certificates", headers=admin, json={"pem": "junk"})
        assert r.status_code == 422 and r.json()["rule"] == "certificate"
        r = httpx.post(f"{base}/{A}/certificates", headers=own,
                       json={"pem": client.pem.decode()})
        assert r.status_code == 403
        r = httpx.post(f"{base}/{A}/service-agreements", headers=admin,
                       json={"serviceAgreementUUID": OTHER_AGREEMENT})
        assert r.json()["subscriber"]["serviceAgreements"] == [OTHER_AGREEMENT]
        r = httpx.post(f"{base}/{A}/service-agreements", headers=admin,
                       json={"serviceAgreementUUID": AGREEMENT})
        assert r.status_code == 409
        listed = {s["uuid"]: s for s in httpx.get(base, headers=admin).json()}
        assert [c["sha256"] for c in listed[A]["certificates"]] == [client.sha256]
        r = httpx.delete(f"{base}/{A}/certificates/{client.sha256}", headers=admin)
        assert r.json()["result"] == "REMOVED" and r.json()["subscriber"]["certificates"] == []
        r = httpx.delete(f"{base}/{A}/service-agreements/{OTHER_AGREEMENT}", headers=admin)
        assert r.json()["result"] == "REMOVED"
        r = httpx.delete(f"{base}/{A}/certificates/{client.sha256}", headers=own)
        assert r.status_code == 403
    ops = [(e.operation, e.result, e.transport) for e in svc.audit_trail(A)
           if "Certificate" in e.operation or "Agreement" in e.operation]
    assert ops == [("AddCertificate", "ADDED", "rest"),
                   ("AddCertificate", "REJECTED: certificate: not a certificate: no PEM "
                    "'BEGIN CERTIFICATE' block or DER certificate could be read (ValueError)",
                    "rest"),
                   ("AddCertificate", "DENIED: administrator required", "rest"),
                   ("AddServiceAgreement", "ADDED", "rest"),
                   ("AddServiceAgreement", f"REFUSED: registered for IT system {B}", "rest"),
                   ("RemoveCertificate", "REMOVED", "rest"),
                   ("RemoveServiceAgreement", "REMOVED", "rest"),
                   ("RemoveCertificate", "DENIED: administrator required", "rest")]

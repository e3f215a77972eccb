"""Mutual TLS identifies the caller (issue 12, item 5, transport part): a real handshake
on 127.0.0.1, the certificate's fingerprint reaches the app, a proxy's header is
believed only from a trusted address."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import quote

import httpx
import pytest
import xmltodict

from cpr_abonnement.api import soap
from cpr_abonnement.api.app import create_app
from cpr_abonnement.api.tls import ServerTls
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import TestCA
from support.servers import api_serve, uvicorn_server
from support.soapclient import AGREEMENT_B, PNR_1, A, B, envelope, post, register, result_of

HEADER = "X-SSL-Client-Cert"


def soap_audit(engine) -> list[tuple[str, str | None, str | None, str]]:
    """(operation, transport, certificate fingerprint, result) of the SOAP calls' rows."""
    rows = SubscriptionService(engine, caller="t").audit_trail()
    return [(r.operation, r.transport, r.certificate_sha256, r.result) for r in rows
            if r.transport == "soap"]


def call(http: httpx.Client, url: str, **headers):
    return http.post(url + soap.PATH, content=envelope(
        "AddPNRSubscription", f"<cpr:PNR>{PNR_1}</cpr:PNR>").encode(),
        headers={"Content-Type": "text/xml", **headers})


def test_the_presented_certificate_reaches_the_app(endpoint):
    with endpoint.client("a") as http:
        r = call(http, endpoint.base)
    assert result_of(r, "AddPNRSubscription") == "ADDED"
    assert soap_audit(endpoint.engine) == [
        ("AddPNRSubscription", "soap", endpoint.issued["a"].sha256, "ADDED")]


def test_no_certificate_or_another_cas_is_refused_in_the_handshake(endpoint, tmp_path):
    with endpoint.client(None) as http, pytest.raises(httpx.TransportError):
        call(http, endpoint.base)
    other = TestCA("Someone else's CA").client("Aalborg ESDH").write(tmp_path, "forged")
    context = endpoint.tls(None)
    context.load_cert_chain(*map(str, other))
    with httpx.Client(verify=context) as http, pytest.raises(httpx.TransportError):
        call(http, endpoint.base)


def test_plain_uvicorn_does_not_tell_the_app_which_certificate(engine, test_ca, tmp_path):
    """Why api/tls.py exists: uvicorn's own protocol verifies but does not pass it on."""
    _, files = register(engine, test_ca, tmp_path)
    cert, key = test_ca.server().write(tmp_path, "server")
    options = ServerTls(cert, key, test_ca.write(tmp_path)).uvicorn_options()
    options.pop("http")
    with uvicorn_server(create_app(lambda: engine), **options) as base:
        context = httpx.create_ssl_context(verify=str(tmp_path / "ca.pem"))
        context.load_cert_chain(*map(str, files["a"]))
        with httpx.Client(verify=context) as http:
            r = call(http, base)
    fault = xmltodict.parse(r.content)["soap:Envelope"]["soap:Body"]["soap:Fault"]
    assert "no client certificate" in fault["faultstring"]


@pytest.mark.parametrize("trusted, expected", [("127.0.0.1/32", "ADDED"),
                                                ("10.0.0.0/8", "trusted proxy")])
def test_proxy_header_only_from_a_trusted_address(engine, test_ca, tmp_path, trusted,
                                                  expected):
    issued, _ = register(engine, test_ca, tmp_path)
    certificates = soap.ClientCertificates.parse(HEADER, [trusted])
    with uvicorn_server(create_app(lambda: engine, client_certificates=certificates)) as base, \
            httpx.Client() as http:
        r = call(http, base, **{HEADER: quote(issued["a"].pem.decode())})
    body = xmltodict.parse(r.content)["soap:Envelope"]["soap:Body"]
    if expected == "ADDED":
        assert body["ns3:AddPNRSubscriptionResponse"]["ns3:Result"] == "ADDED"
        assert soap_audit(engine) == [
            ("AddPNRSubscription", "soap", issued["a"].sha256, "ADDED")]
    else:
        assert r.status_code == 500 and expected in body["soap:Fault"]["faultstring"]
        assert soap_audit(engine) == []


def fault_string(response) -> str:
    assert response.status_code == 500, response.text
    body = xmltodict.parse(response.content)["soap:Envelope"]["soap:Body"]
    assert body["soap:Fault"]["faultcode"] == "soap:Client"
    return body["soap:Fault"]["faultstring"]


REFUSALS = {
    "system A's certificate acting on B": ("a", {"system": B, "agreement": AGREEMENT_B},
                                           "certificate of another IT system"),
    "unregistered certificate": ("stranger", {}, "certificate not registered"),
    "wrong service agreement": ("a", {"agreement": AGREEMENT_B}, "service agreement"),
    "wrong ServiceUUID": ("a", {"service": "00000000-0000-4000-8000-000000000000"},
                          "service uuid"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_callers_get_a_fault_naming_the_check_and_an_audit_row(endpoint, case):
    who, context, check = REFUSALS[case]
    r = post(endpoint, envelope("AddPNRSubscription", f"<cpr:PNR>{PNR_1}</cpr:PNR>",
                                **context), who=who)
    assert f"not authorised: {check}" in fault_string(r)
    assert soap_audit(endpoint.engine) == [
        ("AddPNRSubscription", "soap", endpoint.issued[who].sha256, f"DENIED: {check}")]
    assert SubscriptionService(endpoint.engine, caller="t").get_all_filters(B).empty


def test_a_removed_certificate_is_refused(endpoint):
    body = envelope("AddPNRSubscription", f"<cpr:PNR>{PNR_1}</cpr:PNR>")
    assert result_of(post(endpoint, body), "AddPNRSubscription") == "ADDED"
    SubscriptionService(endpoint.engine, caller="t").remove_certificate(
        A, endpoint.issued["a"].sha256)
    assert "not authorised: certificate not registered" in fault_string(post(endpoint, body))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_x_forwarded_for_never_makes_a_caller_a_trusted_proxy(engine, db_url, test_ca,
                                                               tmp_path):
    """Issue 21 item 3: under ``cprsub api serve`` a local process that names the trusted
    proxy in ``X-Forwarded-For`` is still 127.0.0.1, and its certificate header is
    refused. The TCP peer decides, nothing the request says about itself."""
    issued, _ = register(engine, test_ca, tmp_path)
    forged = {HEADER: quote(issued["a"].pem.decode()), "X-Forwarded-For": "10.0.0.5"}
    with api_serve(["--db", db_url, "--client-cert-header", HEADER,
                    "--trusted-proxy", "10.0.0.5/32"], tmp_path / "server.log") as (base, _), \
            httpx.Client(timeout=30) as http:
        r = call(http, base, **forged)
    fault = xmltodict.parse(r.content)["soap:Envelope"]["soap:Body"]["soap:Fault"]
    assert r.status_code == 500 and "only from a trusted proxy" in fault["faultstring"]
    assert soap_audit(engine) == []


def handshake(endpoint, *, tls_max: ssl.TLSVersion, ciphers: str) -> str:
    """A raw TLS handshake with the endpoint (client certificate A): the version agreed,
    or the error. ``@SECLEVEL=0`` lets our client offer what OpenSSL would not."""
    context = endpoint.tls("a")
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = tls_max
    context.set_ciphers(ciphers + ":@SECLEVEL=0")
    host, port = endpoint.base.removeprefix("https://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as tls:
            return f"{tls.version()} {tls.cipher()[0]}"
    except (ssl.SSLError, ConnectionError) as e:
        return f"refused: {e}"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_tls_1_2_is_the_floor_with_the_intermediate_suites(endpoint):
    """Issue 21 item 5: TLS 1.0/1.1 and CBC or non-forward-secret suites are refused;
    TLS 1.3 and 1.2 with an ECDHE AEAD suite are served."""
    assert handshake(endpoint, tls_max=ssl.TLSVersion.TLSv1_1,
                     ciphers="ALL").startswith("refused")
    assert handshake(endpoint, tls_max=ssl.TLSVersion.TLSv1_2,
                     ciphers="ECDHE-ECDSA-AES128-SHA256").startswith("refused")  # CBC
    assert handshake(endpoint, tls_max=ssl.TLSVersion.TLSv1_2,
                     ciphers="ECDHE-ECDSA-AES128-GCM-SHA256") \
        == "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256"
    assert handshake(endpoint, tls_max=ssl.TLSVersion.TLSv1_3,
                     ciphers="DEFAULT").startswith("TLSv1.3")

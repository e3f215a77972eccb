"""``cprsub api serve --workers N``: several server processes behind one port, each with
the mutual TLS, the caller's certificate and the database the command line named."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cpr_abonnement.api import soap
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import TestCA
from support.servers import api_serve
from support.soapclient import AGREEMENT_A, A, B, envelope

ROOT = Path(__file__).resolve().parents[2]
PNR = "0101901234"


def workers(pid: int) -> list[int]:
    """The server processes uvicorn started (not multiprocessing's resource tracker)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(c) for c in path.read_text().split()] if path.exists() else []
    return [c for c in found
            if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


@dataclass(frozen=True)
class Served:
    base: str
    context: ssl.SSLContext   # the client's: trusts the CA, presents A's certificate
    token: str                # B's
    pid: int
    ca: Path


@pytest.fixture
def served(tmp_path, sqlite_url):
    """Two IT systems (A by certificate over SOAP, B by token over REST) and the server
    started with ``--workers 2``."""
    engine = make_engine(sqlite_url)
    upgrade(engine)
    svc = SubscriptionService(engine, caller="test")
    svc.add_subscriber(A, "SOAP caller", service_agreements=[AGREEMENT_A])
    svc.add_subscriber(B, "REST caller")
    ca = TestCA()
    client = ca.client("esdh")
    svc.add_certificate(A, client.pem)
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="esdh", subscriber_uuid=B)
    engine.dispose()
    cert, key = ca.server().write(tmp_path, "server")
    ca_file = ca.write(tmp_path)
    context = ssl.create_default_context(cafile=str(ca_file))
    context.load_cert_chain(*map(str, client.write(tmp_path, "client")))
    with api_serve(["--db", sqlite_url, "--workers", "2", "--tls-cert", str(cert),
                    "--tls-key", str(key), "--client-ca", str(ca_file)],
                   tmp_path / "server.log", verify=context) as (base, pid):
        yield Served(base, context, token, pid, ca_file)


def test_two_worker_processes_serve_rest_and_soap_with_mutual_tls(served):
    assert len(workers(served.pid)) == 2
    ctx = {"invocationContext": {"userSystemUUID": B}}
    with httpx.Client(verify=served.context, timeout=30,
                      headers={"Authorization": f"Bearer {served.token}"}) as http:
        for _ in range(6):   # new connections, spread over both processes
            added = http.post(served.base + "/v1/AddPNRSubscription",
                              json={**ctx, "pnr": PNR}, headers={"Connection": "close"})
            assert added.status_code == 200, added.text
        listed = http.post(served.base + "/v1/GetAllFilters", json=ctx).json()
    assert listed["pnrs"] == [PNR]
    reply = httpx.post(served.base + soap.PATH, content=envelope("GetAllFilters"),
                       verify=served.context, timeout=30,
                       headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
    assert reply.status_code == 200 and "GetAllFiltersResponse" in reply.text


def test_without_a_client_certificate_no_process_answers(served):
    anonymous = ssl.create_default_context(cafile=str(served.ca))
    for _ in range(4):
        with pytest.raises(httpx.TransportError):
            httpx.get(served.base + "/v1/health", verify=anonymous, timeout=10)

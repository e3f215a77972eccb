"""``cprsub api serve --workers N``: several server processes behind one port, each with
the mutual TLS, the caller's certificate and the database the command line named, and
each with a listening socket of its own, so that a burst of keep-alive connections is
spread over them and a worker that dies is replaced."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from cpr_abonnement.api import soap
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import TestCA
from support.servers import api_serve, free_port
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


@contextmanager
def _serving(tmp_path: Path) -> Iterator[Served]:
    """Two IT systems (A by certificate over SOAP, B by token over REST) and the server
    started with ``--workers 2``."""
    sqlite_url = f"sqlite:///{tmp_path / 'filters.db'}"
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


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One server for the tests that leave its processes as they found them."""
    with _serving(tmp_path_factory.mktemp("served")) as serving:
        yield serving


@pytest.fixture
def served_alone(tmp_path):
    """A server of the test's own, for a test that kills and stops its processes."""
    with _serving(tmp_path) as serving:
        yield serving


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


def _keep_alive(base: str, context: ssl.SSLContext, tcp: socket.socket) -> ssl.SSLSocket:
    """``tcp`` as a TLS connection that has had one answer and stays open."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    conn = context.wrap_socket(tcp, server_hostname=host)
    conn.sendall(f"GET /v1/health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    assert conn.recv(65536).startswith(b"HTTP/1.1 200")
    return conn


def _connections_per_worker(pid: int, port: int) -> list[int]:
    return sorted(sum(1 for c in psutil.Process(w).net_connections("tcp")
                      if c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED)
                  for w in workers(pid))


def _listening_sockets(pid: int, port: int) -> set[str]:
    return {os.readlink(f"/proc/{pid}/fd/{c.fd}")
            for c in psutil.Process(pid).net_connections("tcp")
            if c.laddr.port == port and c.status == psutil.CONN_LISTEN}


def test_each_worker_listens_on_a_socket_of_its_own(served):
    """uvicorn's own workers share one socket, and the first worker to wake accepted a
    burst of connections nearly whole (3 and 13 of 16 here; all 20 of the look-up bench's
    in two runs of three), keep-alive keeping them there."""
    port = urlsplit(served.base).port
    sockets = [_listening_sockets(w, port) for w in workers(served.pid)]
    assert len(sockets) == 2 and all(len(s) == 1 for s in sockets)
    assert sockets[0] != sockets[1]


def test_a_burst_of_keep_alive_connections_reaches_both_workers(served):
    address = (urlsplit(served.base).hostname, urlsplit(served.base).port)
    burst = [socket.create_connection(address, timeout=30) for _ in range(32)]
    conns = [_keep_alive(served.base, served.context, tcp) for tcp in burst]
    try:
        per_worker = _connections_per_worker(served.pid, address[1])
        assert len(per_worker) == 2 and sum(per_worker) == 32
        assert per_worker[0] >= 3, per_worker  # the kernel's hash: p < 1e-5 otherwise
    finally:
        for conn in conns:
            conn.close()


def test_a_worker_that_dies_is_replaced_and_sigterm_stops_them_all(served_alone):
    served = served_alone
    killed = workers(served.pid)[0]
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while killed in workers(served.pid) or len(workers(served.pid)) < 2:
        assert time.monotonic() < deadline, "no worker replaced the one killed"
        time.sleep(0.2)
    for _ in range(6):  # new connections reach whichever worker their socket has
        answer = httpx.get(served.base + "/v1/health", verify=served.context, timeout=30,
                           headers={"Connection": "close"})
        assert answer.status_code == 200
    remaining = [psutil.Process(w) for w in workers(served.pid)]
    parent = psutil.Process(served.pid)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(30) == 0
    _, alive = psutil.wait_procs(remaining, timeout=30)
    assert not alive


def test_workers_that_cannot_start_stop_the_server_instead_of_restarting(tmp_path, sqlite_url):
    """A malformed setting fails every worker's app factory: the server exits with
    uvicorn's start-up failure code, and no worker is started again in a loop."""
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from cpr_abonnement.cli import main; sys.exit(main())",
         "api", "serve", "--db", sqlite_url, "--workers", "2", "--host", "127.0.0.1",
         "--port", str(port)],
        env={**os.environ, "CPRSUB_API_MAX_BODY_BYTES": "sixteen megabytes",
             "PYTHONPATH": str(ROOT / "include")},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "could not start" in done.stderr
    assert done.stderr.count("Traceback") <= 2  # one per worker at most: no restarts

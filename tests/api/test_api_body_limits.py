"""Issue 10, item 12: the API authenticates before it reads a body, and caps its size.

The server runs as its own process (``uvicorn --factory``), so its peak memory can
be read from ``/proc``; the client is a raw socket, so the test controls exactly how
much of a body has been sent when the answer comes.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.servers import free_port

pytestmark = pytest.mark.slow

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
CAP = 1_000_000  # CPRSUB_API_MAX_BODY_BYTES for the server under test
MB = 1 << 20
CHUNK = b"0" * (64 * 1024)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[int, str, int]]:
    """(port, subscriber token, server pid) of a uvicorn process on 127.0.0.1."""
    url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'filters.db'}"
    engine = make_engine(url)
    upgrade(engine)
    SubscriptionService(engine, caller="setup").add_subscriber(SYS, "Aalborg ESDH")
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="t", subscriber_uuid=SYS)
    engine.dispose()
    port = free_port()
    env = {**os.environ, "CPRSUB_DB_URL": url, "CPRSUB_API_MAX_BODY_BYTES": str(CAP),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "include"),
                                          os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "cpr_abonnement.api.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the API server did not start") from None
                time.sleep(0.1)
        yield port, token, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (Linux ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc status")


def head(port: int, *, length: int | None, token: str | None) -> bytes:
    lines = ["POST /v1/AddPNRSubscriptions HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Content-Type: application/json"]
    lines.append(f"Content-Length: {length}" if length is not None
                 else "Transfer-Encoding: chunked")
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(sock: socket.socket) -> bytes:
    """The whole answer: head and ``Content-Length`` bytes of body (or up to close)."""
    data = b""
    while True:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            length = next((int(line.split(b":")[1]) for line in data[:head_end].split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if len(data) >= head_end + 4 + length:
                return data
        try:
            more = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not more:
            return data
        data += more


def send_until_answered(port: int, request_head: bytes, body_bytes: int, *, chunked: bool,
                        timeout: float = 60) -> tuple[bytes, int]:
    """Send the head, then body chunks until the server answers or the body is sent.

    Returns the start of the answer and how many body bytes had been sent by then.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request_head)
        sent, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0 if sent < body_bytes else 1)
            if readable:
                return read_answer(sock), sent
            if sent < body_bytes:
                piece = CHUNK[:body_bytes - sent]
                try:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                except (BrokenPipeError, ConnectionResetError):
                    return read_answer(sock), sent
                sent += len(piece)
            elif chunked and sent == body_bytes:
                sock.sendall(b"0\r\n\r\n")
                sent += 1
        raise AssertionError(f"no answer within {timeout} s after {sent} body bytes")


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_a_large_body_without_token_is_refused_before_it_is_read(server):
    port, _, pid = server
    before = peak_rss(pid)
    t = time.monotonic()
    answer, sent = send_until_answered(port, head(port, length=200 * MB, token=None),
                                       200 * MB, chunked=False)
    assert status(answer) == 401
    assert sent < 8 * MB, f"the server read {sent // MB} MB before refusing"
    assert time.monotonic() - t < 5
    assert peak_rss(pid) - before < 32 * MB


def test_a_chunked_body_without_token_is_refused_before_it_is_read(server):
    port, _, _ = server
    answer, sent = send_until_answered(port, head(port, length=None, token=None),
                                       200 * MB, chunked=True)
    assert status(answer) == 401 and sent < 8 * MB


def test_a_wrong_token_is_refused_before_the_body_is_read(server):
    port, token, _ = server
    forged = token.rsplit("_", 1)[0] + "_" + "x" * 43
    answer, sent = send_until_answered(port, head(port, length=200 * MB, token=forged),
                                       200 * MB, chunked=False)
    assert status(answer) == 401 and sent < 8 * MB


def test_a_declared_oversized_body_is_413_before_it_is_read(server):
    port, token, pid = server
    before = peak_rss(pid)
    answer, sent = send_until_answered(port, head(port, length=200 * MB, token=token),
                                       200 * MB, chunked=False)
    assert status(answer) == 413
    assert b"CPRSUB_API_MAX_BODY_BYTES" in answer
    assert sent < 8 * MB
    assert peak_rss(pid) - before < 32 * MB


def test_a_chunked_body_over_the_cap_is_413_after_at_most_the_cap(server):
    port, token, pid = server
    before = peak_rss(pid)
    answer, sent = send_until_answered(port, head(port, length=None, token=token),
                                       200 * MB, chunked=True)
    assert status(answer) == 413
    assert sent < CAP + 8 * MB
    assert peak_rss(pid) - before < 32 * MB


def test_a_body_within_the_cap_is_served(server):
    port, token, _ = server
    pnrs = [f"{d:02d}0190{n:04d}" for d in range(1, 29) for n in range(1000, 3000)]
    body = {"invocationContext": {"userSystemUUID": SYS}, "pnrs": pnrs}  # ~0.8 MB
    r = httpx.post(f"http://127.0.0.1:{port}/v1/AddPNRSubscriptions", json=body, timeout=60,
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["counts"] == {"ADDED": len(pnrs)}

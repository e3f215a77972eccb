"""Benchmark: SF6002 over SOAP vs the REST API, same server, same run, mutual TLS.

    .venv/bin/python bench/soap_ops.py [--pnrs 10000] [--clients 20] [--gets 200] [--db URL]

Starts the real ``cprsub api serve --tls-cert --tls-key --client-ca`` in a subprocess
(a test CA and certificates made here), registers two IT systems (one called over SOAP
with its certificate, one over REST with a token, both over the same mutual TLS), then
per transport: ``AddPNRSubscription`` of ``--pnrs`` distinct PNRs, one per call, from
``--clients`` concurrent keep-alive clients; then ``GetAllFilters`` (returning all
those PNRs) ``--gets`` times. Prints operations/s, p50 and p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test PKI and the client-side envelope helpers

from cpr_abonnement.api import soap  # noqa: E402
from cpr_abonnement.identities import credentials  # noqa: E402
from cpr_abonnement.identities.credentials import Role  # noqa: E402
from cpr_abonnement.store.db import make_engine, upgrade  # noqa: E402
from cpr_abonnement.subscriptions.service import SubscriptionService  # noqa: E402
from support.certs import TestCA  # noqa: E402
from support.servers import free_port  # noqa: E402
from support.soapclient import AGREEMENT_A, A, B, envelope  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from bulk_load import synthetic_pnrs  # noqa: E402


def setup(url: str, ca: TestCA, work: Path) -> tuple[str, ssl.SSLContext]:
    """The two IT systems; returns B's REST token and A's client TLS context."""
    engine = make_engine(url)
    upgrade(engine)
    svc = SubscriptionService(engine, caller="bench")
    svc.add_subscriber(A, "SOAP caller", service_agreements=[AGREEMENT_A])
    svc.add_subscriber(B, "REST caller")
    client = ca.client("bench")
    svc.add_certificate(A, client.pem)
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="bench", subscriber_uuid=B)
    context = ssl.create_default_context(cafile=str(ca.write(work)))
    context.load_cert_chain(*map(str, client.write(work, "client")))
    engine.dispose()
    return token, context


def serve(url: str, ca: TestCA, work: Path, port: int, workers: int = 1, *,
          via: str = "tls") -> subprocess.Popen:
    """``cprsub api serve`` on ``port``: with its own mutual TLS (``via="tls"``), plain
    HTTP (``"http"``), or plain HTTP behind a proxy on this host that sends the client
    certificate in nginx's header (``"proxy"``)."""
    options: list[str] = []
    if via == "tls":
        cert, key = ca.server().write(work, "server")
        options = ["--tls-cert", str(cert), "--tls-key", str(key),
                   "--client-ca", str(ca.write(work))]
    elif via == "proxy":
        options = ["--client-cert-header", "X-SSL-Client-Cert",
                   "--trusted-proxy", "127.0.0.1/32"]
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from cpr_abonnement.cli import main; sys.exit(main())",
         "api", "serve", "--db", url, "--workers", str(workers), "--port", str(port),
         *options],
        stdout=(work / "server.log").open("w"), stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "include")})


async def wait_up(base: str, context: ssl.SSLContext) -> None:
    async with httpx.AsyncClient(verify=context) as http:
        for _ in range(200):
            try:
                await http.get(base + "/v1/health")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the API server did not start")


async def run(calls: list, clients: int, context: ssl.SSLContext) -> tuple[float, np.ndarray]:
    """Each call is (method, url, kwargs); ``clients`` keep-alive clients share them."""
    latencies: list[float] = []
    queue = iter(calls)

    async def worker() -> None:
        async with httpx.AsyncClient(verify=context, timeout=120) as http:
            for method, url, kwargs in queue:
                t = time.perf_counter()
                r = await http.request(method, url, **kwargs)
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {r.status_code}")
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - started, np.array(latencies)


def report(name: str, seconds: float, lat: np.ndarray) -> None:
    p50, p99 = (np.percentile(lat, q) * 1000 for q in (50, 99))
    print(f"{name:<34} {len(lat):>6} ops  {len(lat) / seconds:>8.1f} ops/s  "
          f"p50 {p50:>7.1f} ms  p99 {p99:>7.1f} ms")


def soap_calls(url: str, pnrs: list[str], gets: int) -> tuple[list, list]:
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    adds = [("POST", url, {"content": envelope("AddPNRSubscription",
                                               f"<cpr:PNR>{p}</cpr:PNR>"), "headers": headers})
            for p in pnrs]
    return adds, [("POST", url, {"content": envelope("GetAllFilters"),
                                 "headers": headers})] * gets


def rest_calls(base: str, token: str, pnrs: list[str], gets: int) -> tuple[list, list]:
    headers = {"Authorization": f"Bearer {token}"}
    ctx = {"userSystemUUID": B}
    adds = [("POST", base + "/v1/AddPNRSubscription",
             {"json": {"invocationContext": ctx, "pnr": p}, "headers": headers}) for p in pnrs]
    return adds, [("POST", base + "/v1/GetAllFilters",
                   {"json": {"invocationContext": ctx}, "headers": headers})] * gets


async def bench(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="soap-bench-"))
    url = args.db or f"sqlite:///{work}/filters.db"
    ca = TestCA()
    token, context = setup(url, ca, work)
    port = free_port()
    server = serve(url, ca, work, port)
    base = f"https://127.0.0.1:{port}"
    try:
        await wait_up(base, context)
        pnrs = synthetic_pnrs(args.pnrs * 2)
        pnrs = list(dict.fromkeys(pnrs))[:args.pnrs]
        print(f"{args.pnrs:,} PNRs, {args.clients} concurrent keep-alive clients, mutual TLS, "
              f"{url.split(':')[0]}")
        for name, (adds, gets) in (("SOAP", soap_calls(base + soap.PATH, pnrs, args.gets)),
                                   ("REST", rest_calls(base, token, pnrs, args.gets))):
            report(f"{name} AddPNRSubscription", *await run(adds, args.clients, context))
            report(f"{name} GetAllFilters ({len(pnrs):,} PNRs)",
                   *await run(gets, args.clients, context))
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pnrs", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--gets", type=int, default=200)
    ap.add_argument("--db")
    asyncio.run(bench(ap.parse_args()))


if __name__ == "__main__":
    main()

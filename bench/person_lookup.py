"""Benchmark: SF1520 ``PersonLookup`` on a replica of N persons, mutual TLS, keep-alive.

    .venv/bin/python bench/person_lookup.py                 # 1M persons, PostgreSQL
    .venv/bin/python bench/person_lookup.py --persons 100000 --lookups 5000 --workers 2

A status extract of N persons is generated and loaded (``cprsub replica load``) into a
throwaway PostgreSQL cluster (or ``--db``), one IT system is registered with its client
certificate and an SF1520 service agreement, and the real ``cprsub api serve`` (TLS, client
CA, ``--workers``) answers ``--lookups`` look-ups of persons drawn at random from the
replica, from ``--clients`` concurrent keep-alive clients, each envelope posted as the
Latin-1 bytes existing clients send. Every look-up is logged (HMAC), as in production.
Prints look-ups/s, p50 and p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import lean_client  # noqa: E402
from backup_restore import database  # noqa: E402 (a throwaway database on a server)
from soap_ops import serve, wait_up  # noqa: E402

from cpr_abonnement.api import person_lookup  # noqa: E402
from cpr_abonnement.store.db import make_engine, upgrade  # noqa: E402
from cpr_abonnement.subscriptions.service import SubscriptionService  # noqa: E402
from support.certs import TestCA  # noqa: E402
from support.servers import free_port, postgres_server  # noqa: E402
from support.soapclient import LOOKUP_AGREEMENT, A, lookup_envelope  # noqa: E402

CPRSUB = str(Path(sys.executable).parent / "cprsub")


def load(url: str, persons: int, work: Path) -> list[str]:
    """The replica of ``persons`` persons; returns their PNRs."""
    status = work / "D261116.L431101"
    subprocess.run([CPRSUB, "extract", "generate", "--kind", "status", "--date",
                    f"{dt.date(2026, 11, 16)}", "--persons", str(persons), "--seed", "1",
                    "-o", str(status)], check=True, stdout=subprocess.DEVNULL)
    engine = make_engine(url)
    upgrade(engine)
    subprocess.run([CPRSUB, "replica", "load", str(status), "--no-expectations", "--db", url],
                   check=True)
    status.unlink()
    with engine.connect() as conn:
        pnrs = list(conn.execute(text("SELECT pnr FROM replica_person")).scalars())
    # What autovacuum and the checkpointer would do after a 1.2 GB load anyway, done
    # before the clock starts rather than during it.
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text("VACUUM (ANALYZE) replica_person"))
        conn.execute(text("CHECKPOINT"))
    engine.dispose()
    return pnrs


def register(url: str, ca: TestCA, work: Path) -> ssl.SSLContext:
    engine = make_engine(url)
    svc = SubscriptionService(engine, caller="bench")
    svc.add_subscriber(A, "Look-up caller")
    svc.add_service_agreement(A, LOOKUP_AGREEMENT, "sf1520")
    client = ca.client("bench")
    svc.add_certificate(A, client.pem)
    context = ssl.create_default_context(cafile=str(ca.write(work)))
    context.load_cert_chain(*map(str, client.write(work, "client")))
    engine.dispose()
    return context


async def bench(url: str, args: argparse.Namespace, work: Path) -> None:
    import random

    pnrs = load(url, args.persons, work)
    ca = TestCA()
    context = register(url, ca, work)
    os.environ["CPRSUB_LOOKUP_KEY"] = "bench-look-up-key"
    port = free_port()
    server = serve(url, ca, work, port, workers=args.workers)
    base = f"https://127.0.0.1:{port}"
    try:
        await wait_up(base, context)
        rng = random.Random(7)
        url_ = base + person_lookup.PATH
        calls = [lean_client.request("POST", url_, lookup_envelope(p))
                 for p in rng.choices(pnrs, k=args.lookups)]
        # Connections and the server's caches warm before the clock starts.
        warm = iter(calls[: args.clients * 5])
        await lean_client.run(url_, [warm] * args.clients, context)
        print(f"{len(pnrs):,} persons in the replica, {args.clients} concurrent keep-alive "
              f"clients, mutual TLS, {args.workers} worker(s), {url.split(':')[0]}")
        if args.pause:
            input(f"server pid {server.pid}; press Enter to start ")
        shared = iter(calls)
        result = await lean_client.run(url_, [shared] * args.clients, context)
        result.report("SF1520 PersonLookup")
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=20_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--pause", action="store_true",
                    help="wait for Enter before the measured run (to attach a profiler)")
    ap.add_argument("--db", help="a PostgreSQL database URL (default: a throwaway cluster)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cprsub-bench-lookup-") as tmp:
        if args.db:
            asyncio.run(bench(args.db, args, Path(tmp)))
            return
        with postgres_server() as server, database(server, "lookup_bench") as url:
            asyncio.run(bench(url, args, Path(tmp)))


if __name__ == "__main__":
    main()

"""Benchmark: the subscription API under load, REST and SF6002 SOAP side by side.

    .venv/bin/python bench/api_load.py [--db sqlite postgresql] [--clients 20 100]
                                       [--seconds 10] [--transport rest soap] [--workers 1]

Starts the real ``cprsub api serve`` (mutual TLS, as in ``bench/soap_ops.py``) once per
database, on a fresh SQLite file and on a throwaway PostgreSQL cluster (started as the
tests start it: ``tests/support/servers.postgres_server``). For each transport and each
client count, ``--clients`` concurrent keep-alive clients run the mix a reconciliation
job makes, each on PNRs of its own, for ``--seconds`` (bounded time, not a fixed count):
``AddPNRSubscription``, ``GetAllFilters``, ``RemovePNRSubscription``, in turn, all for
the same IT system. Prints requests/s, the p50, p99 and worst latency, and the CPU time
per request of the API server (all ``--workers`` processes), of PostgreSQL (all its
processes) and of this client process: on a 2-core machine the clients' TLS and HTTP
work bounds requests/s as much as the server does. Any answer other
than 200 counts as an error and is shown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from bulk_load import synthetic_pnrs  # noqa: E402
from soap_ops import serve, setup, wait_up  # noqa: E402

from cpr_abonnement.api import soap  # noqa: E402
from support.certs import TestCA  # noqa: E402
from support.servers import free_port, postgres_server  # noqa: E402
from support.soapclient import B, envelope  # noqa: E402

SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and all its descendants so far,
    those it has reaped included (Linux ``/proc``): the server's worker processes, or
    PostgreSQL's backends. On a shared machine CPU per request is steadier than wall
    time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:  # ended meanwhile: its parent has reaped its time
        return 0.0
    own = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(c)) for c in children)


def postmaster(url: str) -> int | None:
    """The PostgreSQL server process listening on ``url``'s port (None: not local)."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = stat.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and f"-p {port}".encode() in b" ".join(argv):
            return int(stat.parent.name)
    return None


@dataclass
class Tally:
    """Latencies (seconds) and non-200 answers of one run."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    server_cpu: float = 0.0
    database_cpu: float | None = None
    client_cpu: float = 0.0


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this (client) process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rest_requests(base: str, token: str, pnr: str) -> list[tuple[str, dict]]:
    """One round of the mix over REST: add, get all, remove."""
    headers = {"Authorization": f"Bearer {token}"}
    ctx = {"userSystemUUID": B}
    return [(base + "/v1/AddPNRSubscription",
             {"json": {"invocationContext": ctx, "pnr": pnr}, "headers": headers}),
            (base + "/v1/GetAllFilters", {"json": {"invocationContext": ctx},
                                          "headers": headers}),
            (base + "/v1/RemovePNRSubscription",
             {"json": {"invocationContext": ctx, "pnr": pnr}, "headers": headers})]


def soap_requests(base: str, _token: str, pnr: str) -> list[tuple[str, dict]]:
    """One round of the mix over SOAP (system A, its client certificate)."""
    argument = f"<cpr:PNR>{pnr}</cpr:PNR>"
    return [(base + soap.PATH, {"content": envelope(op, arg), "headers": SOAP_HEADERS})
            for op, arg in (("AddPNRSubscription", argument), ("GetAllFilters", ""),
                            ("RemovePNRSubscription", argument))]


async def load(round_of, base: str, token: str, clients: int, seconds: float,
               context, pnrs: Iterator[str]) -> tuple[float, Tally]:
    """``clients`` workers run rounds until ``seconds`` have passed."""
    tally = Tally()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        async with httpx.AsyncClient(verify=context, timeout=120) as http:
            while time.perf_counter() < deadline:
                for url, kwargs in round_of(base, token, next(pnrs)):
                    t = time.perf_counter()
                    r = await http.post(url, **kwargs)
                    tally.latencies.append(time.perf_counter() - t)
                    if r.status_code != 200:
                        tally.errors[r.status_code] = tally.errors.get(r.status_code, 0) + 1
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - started, tally


def report(name: str, seconds: float, tally: Tally) -> None:
    """One line: requests/s, p50, p99, worst latency and server CPU ms per request."""
    lat = sorted(tally.latencies)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    errors = f"  errors {tally.errors}" if tally.errors else ""
    print(f"{name:<28} {len(lat):>7} req {len(lat) / seconds:>8.1f} req/s  "
          f"p50 {statistics.median(lat) * 1000:>7.1f} ms  p99 {p99 * 1000:>7.1f} ms  "
          f"max {lat[-1] * 1000:>7.1f} ms  server CPU {tally.server_cpu / len(lat) * 1000:>5.2f} "
          f"ms/req  client CPU {tally.client_cpu / len(lat) * 1000:>5.2f} ms/req"
          + (f"  database CPU {tally.database_cpu / len(lat) * 1000:>5.2f} ms/req"
             if tally.database_cpu is not None else "") + errors,
          flush=True)


@contextlib.contextmanager
def database(kind: str, work: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{work}/filters.db"
    elif kind == "postgresql":
        with postgres_server() as url:
            yield url
    else:
        yield kind  # a URL


async def bench_database(kind: str, args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="api-load-"))
    ca = TestCA()
    pnrs = iter(dict.fromkeys(synthetic_pnrs(1_000_000, seed=7)))
    with database(kind, work) as url:
        token, context = setup(url, ca, work)
        port = free_port()
        server = serve(url, ca, work, port, args.workers)
        db_pid = postmaster(url) if url.startswith("postgresql") else None
        base = f"https://127.0.0.1:{port}"
        try:
            await wait_up(base, context)
            label = url.split(":")[0].split("+")[0]
            for clients, transport in itertools.product(args.clients, args.transport):
                round_of = rest_requests if transport == "rest" else soap_requests
                await load(round_of, base, token, clients, 1.0, context, pnrs)  # warm-up
                cpu, own = cpu_seconds(server.pid), own_cpu_seconds()
                db_cpu = cpu_seconds(db_pid) if db_pid else 0.0
                seconds, tally = await load(round_of, base, token, clients, args.seconds,
                                            context, pnrs)
                tally.server_cpu = cpu_seconds(server.pid) - cpu
                if db_pid:
                    tally.database_cpu = cpu_seconds(db_pid) - db_cpu
                tally.client_cpu = own_cpu_seconds() - own
                report(f"{label} {transport.upper()} {clients} clients", seconds, tally)
        finally:
            server.terminate()
            server.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", nargs="+", default=["sqlite", "postgresql"],
                    help="sqlite, postgresql (a throwaway cluster) or a database URL")
    ap.add_argument("--clients", nargs="+", type=int, default=[20, 100])
    ap.add_argument("--transport", nargs="+", choices=["rest", "soap"],
                    default=["rest", "soap"])
    ap.add_argument("--seconds", type=float, default=10.0, help="per run (bounded time)")
    ap.add_argument("--workers", type=int, default=1, help="API server processes")
    args = ap.parse_args()
    print("mix per client: AddPNRSubscription, GetAllFilters, RemovePNRSubscription; "
          "one IT system per transport; mutual TLS; keep-alive", flush=True)
    for kind in args.db:
        asyncio.run(bench_database(kind, args))


if __name__ == "__main__":
    main()

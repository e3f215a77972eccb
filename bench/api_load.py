"""Benchmark: the subscription API under load, REST and SF6002 SOAP.

    .venv/bin/python bench/api_load.py [--db postgresql sqlite] [--via http nginx tls]
                                       [--clients 20] [--seconds 10] [--workers 2]
                                       [--transport rest soap]

Starts the real ``cprsub api serve`` once per database and way in (``--via``), on a
fresh SQLite file or a throwaway PostgreSQL cluster (started as the tests start it:
``tests/support/servers.postgres_server``):

- ``http``: plain HTTP, driven by ``wrk`` (a C client that costs the server's two cores
  almost nothing; installed with apt when missing) running ``bench/api_mix.lua``. REST only: wrk
  cannot present a client certificate.
- ``nginx``: the compose file's nginx (``deploy/nginx/templates``) terminating mutual TLS
  in front of the server, which reads the certificate from nginx's header.
- ``tls``: the server's own mutual TLS.

Over TLS the load comes from ``bench/lean_client.py`` (pre-encoded requests, 0.1 ms of
CPU per request, its cost shown). ``--clients`` keep-alive connections run, for
``--seconds``, the mix a reconciliation job makes, each add on a PNR of its own:
``AddPNRSubscription``, ``GetAllFilters``, ``RemovePNRSubscription`` in turn, for one IT
system per transport. Prints requests/s, the p50, p99 and worst latency, and the CPU time
per request of the API server (all ``--workers`` processes), of PostgreSQL (all its
processes), of nginx and of the client. Any answer other than 200 is an error, shown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import lean_client  # noqa: E402
from bulk_load import synthetic_pnrs  # noqa: E402
from soap_ops import serve, setup, wait_up  # noqa: E402

from cpr_abonnement.api import soap  # noqa: E402
from support.certs import TestCA  # noqa: E402
from support.proxy import nginx  # noqa: E402
from support.servers import free_port, postgres_server  # noqa: E402
from support.soapclient import B, envelope  # noqa: E402

SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
MIX = ROOT / "bench" / "api_mix.lua"


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
    """One run: requests, seconds, latency percentiles and CPU seconds per party."""

    requests: int
    seconds: float
    p50: float
    p99: float
    worst: float
    errors: int = 0
    cpu: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, result: lean_client.Result) -> Tally:
        lat = result.latencies
        return cls(len(lat), result.seconds, *(float(np.percentile(lat, q)) for q in (50, 99)),
                   float(lat.max()), cpu={"client": result.client_cpu})


def report(name: str, tally: Tally) -> None:
    """One line: requests/s, p50, p99, worst latency and CPU ms per request."""
    n = tally.requests
    cpu = "  ".join(f"{who} {seconds / n * 1000:.2f}" for who, seconds in tally.cpu.items())
    errors = f"  ERRORS {tally.errors}" if tally.errors else ""
    print(f"{name:<34} {n:>7} req {n / tally.seconds:>8.1f} req/s  "
          f"p50 {tally.p50 * 1000:>6.1f} ms  p99 {tally.p99 * 1000:>6.1f} ms  "
          f"max {tally.worst * 1000:>6.1f} ms  CPU ms/req: {cpu}{errors}", flush=True)


def rest_round(base: str, token: str, pnr: str) -> list[bytes]:
    """One round of the mix over REST (system B, its token): add, get all, remove."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ctx = {"userSystemUUID": B}
    return [lean_client.request("POST", f"{base}/v1/{op}", json.dumps(body).encode(), headers)
            for op, body in (("AddPNRSubscription", {"invocationContext": ctx, "pnr": pnr}),
                             ("GetAllFilters", {"invocationContext": ctx}),
                             ("RemovePNRSubscription", {"invocationContext": ctx, "pnr": pnr}))]


def soap_round(base: str, _token: str, pnr: str) -> list[bytes]:
    """One round of the mix over SOAP (system A, its client certificate)."""
    argument = f"<cpr:PNR>{pnr}</cpr:PNR>"
    return [lean_client.request("POST", base + soap.PATH, envelope(op, arg).encode(),
                                SOAP_HEADERS)
            for op, arg in (("AddPNRSubscription", argument), ("GetAllFilters", ""),
                            ("RemovePNRSubscription", argument))]


def rounds(round_of, base: str, token: str, pnrs: Iterator[str]) -> Iterator[bytes]:
    """One connection's requests: rounds of the mix, each on a new PNR."""
    for pnr in pnrs:
        yield from round_of(base, token, pnr)


def wrk() -> str:
    """The wrk binary, installed from Debian's packages when missing (as root)."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True,
                       stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
    if found is None:
        sys.exit("bench/api_load.py --via http needs wrk (Debian: apt-get install wrk)")
    return found


def run_wrk(base: str, token: str, clients: int, seconds: float, run: int) -> Tally:
    """wrk with the mix script; its CPU is read from this process's reaped children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([wrk(), "-t", "2", "-c", str(clients), "-d", f"{round(seconds)}s",
                           "-s", str(MIX), base, "--", token, B, str(run)],
                          check=True, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = json.loads(done.stdout.strip().splitlines()[-1])
    return Tally(line["requests"], line["seconds"], line["p50_us"] / 1e6,
                 line["p99_us"] / 1e6, line["max_us"] / 1e6,
                 errors=line["non_2xx"] + line["socket_errors"],
                 cpu={"client": (after.ru_utime - before.ru_utime)
                      + (after.ru_stime - before.ru_stime)})


@contextlib.contextmanager
def database(kind: str, work: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{work}/filters.db"
    elif kind == "postgresql":
        with postgres_server() as url:
            yield url
    else:
        yield kind  # a URL


@dataclass
class Target:
    """Where the load goes in: base URL, the client's TLS context, and the processes
    whose CPU a run reports."""

    base: str
    context: object | None
    processes: dict[str, int]


@contextlib.contextmanager
def target(url: str, via: str, args: argparse.Namespace, ca: TestCA, work: Path,
           context) -> Iterator[Target]:
    port = free_port()
    server = serve(url, ca, work, port, args.workers, via="proxy" if via == "nginx" else via)
    processes = {"server": server.pid}
    direct = f"{'https' if via == 'tls' else 'http'}://127.0.0.1:{port}"
    asyncio.run(wait_up(direct, context))
    if url.startswith("postgresql"):
        processes["database"] = postmaster(url)
    try:
        if via == "nginx":
            proxy_dir = work / "proxy"
            proxy_dir.mkdir(exist_ok=True)
            ca.server().write(proxy_dir, "server")
            ca.write(proxy_dir, "client-ca")
            with nginx(proxy_dir, f"127.0.0.1:{port}", worker_processes="auto") as (base, px):
                yield Target(base, context, {**processes, "nginx": px.pid})
        else:
            yield Target(direct, context if via == "tls" else None, processes)
    finally:
        server.terminate()
        server.wait(timeout=30)


async def measure(tgt: Target, via: str, transport: str, token: str, clients: int,
                  seconds: float, pnrs: Iterator[str], run: int) -> Tally:
    before = {who: cpu_seconds(pid) for who, pid in tgt.processes.items()}
    if via == "http":
        tally = run_wrk(tgt.base, token, clients, seconds, run)
    else:
        round_of = rest_round if transport == "rest" else soap_round
        streams = [rounds(round_of, tgt.base, token, pnrs) for _ in range(clients)]
        tally = Tally.of(await lean_client.run(tgt.base, streams, tgt.context, seconds))
    tally.cpu = {**{who: cpu_seconds(pid) - before[who]
                    for who, pid in tgt.processes.items()}, **tally.cpu}
    return tally


def bench_database(kind: str, args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="api-load-"))
    ca = TestCA()
    pnrs = iter(dict.fromkeys(synthetic_pnrs(2_000_000, seed=7)))
    runs = itertools.count()
    with database(kind, work) as url:
        token, context = setup(url, ca, work)
        label = url.split(":")[0].split("+")[0]
        for via in args.via:
            with target(url, via, args, ca, work, context) as tgt:
                for clients, transport in itertools.product(args.clients, args.transport):
                    if via == "http" and transport == "soap":
                        continue  # wrk has no client certificate: SOAP callers need one
                    asyncio.run(measure(tgt, via, transport, token, clients, 2.0, pnrs,
                                        next(runs)))  # warm-up: connections, caches
                    tally = asyncio.run(measure(tgt, via, transport, token, clients,
                                                args.seconds, pnrs, next(runs)))
                    report(f"{label} {via} {transport.upper()} {clients} conns", tally)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", nargs="+", default=["postgresql", "sqlite"],
                    help="sqlite, postgresql (a throwaway cluster) or a database URL")
    ap.add_argument("--via", nargs="+", choices=["http", "nginx", "tls"],
                    default=["http", "nginx", "tls"])
    ap.add_argument("--clients", nargs="+", type=int, default=[20])
    ap.add_argument("--transport", nargs="+", choices=["rest", "soap"],
                    default=["rest", "soap"])
    ap.add_argument("--seconds", type=float, default=10.0, help="per run (bounded time)")
    ap.add_argument("--workers", type=int, default=2, help="API server processes")
    args = ap.parse_args()
    print(f"mix per connection: AddPNRSubscription, GetAllFilters, RemovePNRSubscription; "
          f"keep-alive; {args.workers} API worker(s); {os.cpu_count()} cores", flush=True)
    for kind in args.db:
        bench_database(kind, args)


if __name__ == "__main__":
    main()

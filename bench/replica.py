"""Benchmark: the CPR replica's status load and daily update, on SQLite and PostgreSQL.

    .venv/bin/python bench/replica.py                         # 1M persons, 50,000 changed
    .venv/bin/python bench/replica.py --persons 100000 --changes 5000 --backends sqlite

Scenario (issue 25): a generated status extract of N persons (``cprsub extract generate
--kind status``) is loaded with ``cprsub replica load`` into a new database, then a change
extract of M persons drawn from the same population is applied with ``cprsub replica
apply``; each command is a process of its own (as an operator runs it), timed wall-clock,
its peak memory read from the kernel (``/usr/bin/time``'s maximum RSS). Validation and the
data-quality suite are skipped (``--no-expectations`` only skips the latter; the
structural rules run, as they must).

The floor of the load, measured in the same run on the same database server: reading
the file once, plus the database's own bulk load of the very rows the load wrote (for
PostgreSQL ``COPY … FROM`` of a binary dump of the replica table into a table of the
same definition, primary key included; for SQLite one ``executemany`` INSERT in one
transaction). Without ``--server`` PostgreSQL is a throwaway cluster
(``tests/support/servers.py``: default memory settings, fsync off).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from backup_restore import database  # noqa: E402 (a throwaway database on a server)

from cpr_abonnement.store.db import make_engine, upgrade  # noqa: E402
from support.servers import postgres_server  # noqa: E402

CPRSUB = str(Path(sys.executable).parent / "cprsub")
STATUS_DAY, CHANGE_DAY = dt.date(2026, 11, 16), dt.date(2026, 11, 17)
COLUMNS = "pnr, current_pnr, status, municipality, block, production_date, extract_id"


def timed(*command: str) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in MB and stdout of one command."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True,
                          text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    return seconds, peak_kb // 1024, done.stdout.strip()


def generate(folder: Path, persons: int, changes: int) -> tuple[Path, Path]:
    status, change = (folder / f"D{d:%y%m%d}.L431101" for d in (STATUS_DAY, CHANGE_DAY))
    subprocess.run([CPRSUB, "extract", "generate", "--kind", "status", "--date",
                    f"{STATUS_DAY}", "--persons", str(persons), "--seed", "1", "-o",
                    str(status)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([CPRSUB, "extract", "generate", "--date", f"{CHANGE_DAY}", "--persons",
                    str(changes), "--seed", "2", "--population", str(persons),
                    "--population-seed", "1", "--previous-date", f"{STATUS_DAY}", "-o",
                    str(change)], check=True, stdout=subprocess.DEVNULL)
    return status, change


def read_seconds(path: Path) -> float:
    started = time.perf_counter()
    with open(path, "rb") as fh:
        while fh.read(16 << 20):
            pass
    return time.perf_counter() - started


def bulk_floor(url: str, scratch: Path) -> float:
    """The database's own bulk load of the rows the replica holds, into a copy of its
    table (created empty, primary key included), in seconds."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS replica_floor"))
        if engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TABLE replica_floor AS SELECT * FROM replica_person "
                              "WHERE 0"))
            conn.execute(text("CREATE UNIQUE INDEX pk_floor ON replica_floor (pnr)"))
            rows = [dict(r._mapping) for r in conn.execute(text(
                f"SELECT {COLUMNS} FROM replica_person"))]
        else:
            conn.execute(text("CREATE TABLE replica_floor (LIKE replica_person INCLUDING "
                              "DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"))
    dump = scratch / "replica.copy"
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cur, open(dump, "wb") as out, cur.copy(
                    f"COPY replica_person ({COLUMNS}) TO STDOUT (FORMAT binary)") as copy:
                for chunk in copy:
                    out.write(chunk)
            raw.commit()
            started = time.perf_counter()
            with raw.cursor() as cur, open(dump, "rb") as src, cur.copy(
                    f"COPY replica_floor ({COLUMNS}) FROM STDIN (FORMAT binary)") as copy:
                while chunk := src.read(8 << 20):
                    copy.write(chunk)
            raw.commit()
            seconds = time.perf_counter() - started
        finally:
            raw.close()
            dump.unlink(missing_ok=True)
    else:
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text(f"INSERT INTO replica_floor ({COLUMNS}) VALUES (:pnr, "
                              ":current_pnr, :status, :municipality, :block, "
                              ":production_date, :extract_id)"), rows)
        seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE replica_floor"))
    engine.dispose()
    return seconds


def measure(backend: str, url: str, status: Path, change: Path, scratch: Path) -> dict:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    load_s, load_mb, load_out = timed(CPRSUB, "replica", "load", str(status),
                                      "--no-expectations", "--db", url)
    apply_s, apply_mb, apply_out = timed(CPRSUB, "replica", "apply", str(change),
                                         "--no-expectations", "--db", url)
    floor = read_seconds(status) + bulk_floor(url, scratch)
    return {"backend": backend, "load_s": round(load_s, 1), "load_peak_mb": load_mb,
            "load_floor_s": round(floor, 1), "load_vs_floor": round(load_s / floor, 2),
            "apply_s": round(apply_s, 1), "apply_peak_mb": apply_mb,
            "load": load_out, "apply": apply_out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--changes", type=int, default=50_000)
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"],
                    choices=["sqlite", "postgresql"])
    ap.add_argument("--server", help="URL of a PostgreSQL server's maintenance database")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="cprsub-bench-replica-") as tmp:
        scratch = Path(tmp)
        status, change = generate(scratch, args.persons, args.changes)
        print(f"status extract {status.stat().st_size / 1e6:,.0f} MB, change extract "
              f"{change.stat().st_size / 1e6:,.0f} MB", flush=True)
        if "sqlite" in args.backends:
            results.append(measure("sqlite", f"sqlite:///{scratch / 'replica.db'}", status,
                                   change, scratch))
        if "postgresql" in args.backends:
            if args.server:
                results.append(measure("postgresql", args.server, status, change, scratch))
            else:
                with postgres_server() as server, database(server, "replica_bench") as url:
                    results.append(measure("postgresql", url, status, change, scratch))
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()

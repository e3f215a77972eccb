"""Benchmark: backing up and restoring the filter database at national scale (PostgreSQL).

    .venv/bin/python bench/backup_restore.py                          # 20M PNR filters
    .venv/bin/python bench/backup_restore.py --pnrs 2000000 5000000   # smaller, in turn
    .venv/bin/python bench/backup_restore.py --server postgresql://u:pw@host/postgres

Scenario (issue 22, item 8): 1,000 subscribers holding N PNR filter rows in total (N/1,000
each), a year of delivery ledger (250 extracts x 1,000 subscribers) and two audit rows per
subscriber, in the real tables after ``cprsub db upgrade``. The rows are generated inside
the server (``generate_series``): the PNR table's secondary indexes are dropped for the
load and rebuilt from their own definitions afterwards, then the table is vacuumed (as
autovacuum leaves a production table); each phase is timed. Then the real commands, each
a process of its own, as an operator runs them: ``cprsub db backup`` (pg_dump -Fc and the
manifest) and ``cprsub db restore`` into a new, empty database (pg_restore
--single-transaction, then the checks against the manifest). Reported: wall seconds,
database and dump sizes. Each size's databases are dropped before the next one.

Without ``--server`` it runs on a throwaway cluster (``tests/support/servers.py``:
PostgreSQL's default memory settings and fsync off, so a restore onto real disks with
fsync on may take longer).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cpr_abonnement.store.db import make_engine, upgrade  # noqa: E402
from support.servers import postgres_server  # noqa: E402

CPRSUB = str(Path(sys.executable).parent / "cprsub")
SUBSCRIBERS = 1_000
LEDGER_DAYS = 250

#: g -> a distinct, plausible PNR (DDMMYY + 4 digits, days 1-28): 7919 is prime to
#: 336,000,000 = 28 days x 12 months x 100 years x 10,000 serials, so g*7919 mod that
#: visits every combination once.
PNR_OF_G = """
    ((g * 7919) % 336000000 / 10000 / 100 / 12 + 1) * 100000000
    + ((g * 7919) % 336000000 / 10000 / 100 % 12 + 1) * 1000000
    + ((g * 7919) % 336000000 / 10000 % 100) * 10000
    + (g * 7919) % 336000000 % 10000"""


def timed(label: str, seconds: dict[str, float], engine: Engine, *statements: str,
          **params: int) -> None:
    t = time.perf_counter()
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)
    seconds[label] = time.perf_counter() - t


def generate(engine: Engine, pnrs: int) -> dict[str, float]:
    """Fill the upgraded database; wall seconds per phase."""
    seconds: dict[str, float] = {}
    timed("subscribers, audit, ledger", seconds, engine, """
        INSERT INTO subscriber (id, uuid, name, remote_dir, active, created_at, delivery_mode)
        SELECT s, lpad(to_hex(s), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(s), 12, '0'),
               'Bench system ' || s, '.', true, timestamp '2025-01-01', 'push'
        FROM generate_series(1, :subs) s""",
        "SELECT setval(pg_get_serial_sequence('subscriber', 'id'), :subs)", """
        INSERT INTO audit (at, caller, subscriber_uuid, operation, arguments, result)
        SELECT timestamp '2025-01-01' + s * interval '1 minute', 'bench', uuid, op,
               '{"pnrs": "' || :per || ' PNRs"}', 'ADDED'
        FROM subscriber, generate_series(1, 2) s,
             LATERAL (SELECT CASE s WHEN 1 THEN 'AddSubscriber'
                                    ELSE 'AddPNRSubscription' END AS op) o""", """
        INSERT INTO extract_run (task_number, production_date, previous_date, file_name,
                                 extract_sha256, persons, records, first_processed_at,
                                 filters_as_of, delivered_at)
        SELECT '431101', d::date, d::date - 1, 'D' || to_char(d, 'YYMMDD') || '.L431101',
               md5(d::text) || md5(d::text || 'x'), 1000000, 11400000,
               d + interval '20 hours', d + interval '20 hours', d + interval '21 hours'
        FROM generate_series(date '2025-01-01', date '2025-01-01' + :days - 1,
                             interval '1 day') d""", """
        INSERT INTO delivery (extract_run_id, subscriber_uuid, file_name, sha256, persons,
                              records, target, attempts, outcome, detail, updated_at,
                              delivered_at, size_bytes)
        SELECT e.id, s.uuid, e.file_name, md5(e.id || s.uuid) || md5(s.uuid || e.id), 200,
               2300, 'sftp sftp_bench:/in', 1, 'DELIVERED',
               e.file_name || ' (230000 bytes), ' || e.file_name || '.metadata (900 bytes)',
               e.delivered_at, e.delivered_at, 230000
        FROM extract_run e CROSS JOIN subscriber s""",
        subs=SUBSCRIBERS, per=pnrs // SUBSCRIBERS, days=LEDGER_DAYS)
    with engine.connect() as conn:
        indexes = conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'filter_pnr' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint "
            "WHERE conrelid = 'filter_pnr'::regclass)")).all()
    timed("PNR filters (indexes dropped)", seconds, engine,
          *(f"DROP INDEX {name}" for name, _ in indexes), f"""
        INSERT INTO filter_pnr (subscriber_id, pnr, added_at)
        SELECT g / :per + 1, {PNR_OF_G},
               timestamp '2025-01-01' + (g % 86400) * interval '1 second'
        FROM generate_series(0::bigint, :n - 1) g""", per=pnrs // SUBSCRIBERS, n=pnrs)
    timed("PNR indexes rebuilt", seconds, engine, *(d for _, d in indexes))
    t = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) filter_pnr"))
    seconds["vacuum analyze"] = time.perf_counter() - t
    return seconds


def cprsub(*args: str) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run([CPRSUB, *args], capture_output=True, text=True, check=False)
    took = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"cprsub {' '.join(args[:2])} failed: {done.stderr}")
    return took, done.stdout


@contextmanager
def database(server: str, name: str) -> Iterator[str]:
    """A new database on ``server``, dropped afterwards (disk space for the next size)."""
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def size_of(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    engine.dispose()
    return int(size)


def measure(server: str, pnrs: int, out: Path) -> dict[str, object]:
    with database(server, "bench_filters") as url:
        engine = make_engine(url)
        upgrade(engine)
        generation = generate(engine, pnrs)
        engine.dispose()
        db_bytes = size_of(url)
        backup_s, _ = cprsub("db", "backup", "--db", url, "--out", str(out))
        (manifest,) = out.glob("*.manifest.json")
        facts = json.loads(manifest.read_text())
        dump = out / facts["file"]
        with database(server, "bench_restored") as target:
            restore_s, said = cprsub("db", "restore", str(dump), "--db", target)
            restored_bytes = size_of(target)
        pg_restore_s = float(said.split(" tables, ", 1)[1].split(" s;", 1)[0])
        for f in (dump, manifest):
            f.unlink()
    return {"pnrs": pnrs, "generation_s": generation, "database_bytes": db_bytes,
            "dump_bytes": facts["size_bytes"], "backup_s": backup_s,
            "backup_in_pg_dump_s": facts["seconds"], "restore_s": restore_s,
            "restore_in_pg_restore_s": pg_restore_s, "restored_bytes": restored_bytes,
            "rows": sum(facts["rows"].values())}


def report(r: dict[str, object]) -> None:
    mb = 1024 * 1024
    gen = r["generation_s"]
    print(f"\n{r['pnrs']:,} PNR filters, {SUBSCRIBERS:,} subscribers, {r['rows']:,} rows")
    print("  generation: " + ", ".join(f"{k} {v:.1f} s" for k, v in gen.items())
          + f" (total {sum(gen.values()):.1f} s)")
    print(f"  database {r['database_bytes'] / mb:,.0f} MB; dump {r['dump_bytes'] / mb:,.0f} MB")
    print(f"  cprsub db backup  {r['backup_s']:7.1f} s  (dump and manifest "
          f"{r['backup_in_pg_dump_s']:.1f} s)")
    print(f"  cprsub db restore {r['restore_s']:7.1f} s  (pg_restore "
          f"{r['restore_in_pg_restore_s']:.1f} s, the rest: SHA-256, revision, row counts)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pnrs", type=int, nargs="+", default=[20_000_000])
    ap.add_argument("--server", help="URL of a PostgreSQL server's maintenance database "
                                     "(default: a throwaway cluster)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cprsub-bench-") as scratch:
        if args.server:
            runs = [measure(args.server, n, Path(scratch)) for n in args.pnrs]
        else:
            with postgres_server() as server:
                runs = [measure(server, n, Path(scratch)) for n in args.pnrs]
    for r in runs:
        report(r)


if __name__ == "__main__":
    main()

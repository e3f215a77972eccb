"""Benchmark: the whole filter step at national scale, and how it scales.

    .venv/bin/python bench/filter_day.py                 # 1M persons x 1,000 subscribers
    .venv/bin/python bench/filter_day.py --scaling       # + 100k/1M persons x 10/100/1,000
    .venv/bin/python bench/filter_day.py --persons 200000 --subscribers 100   # smaller
    .venv/bin/python bench/filter_day.py --active 20 200 1000   # RSS against subscribers
    .venv/bin/python bench/filter_day.py --persons 200000 --subscribers 100 --hit-rate 1 --cli


Scenario (issue 4): a 1,000,000-person extract (~11.4M records, from
``bench/extract_read.py``), 1,000 subscribers holding 20,000,000 PNR filter rows (20,000
each, 1% of them persons in the extract), plus 100 subscribers with one municipality
each, 20 with a one-year age range, 30 with a change code, on the embedded SQLite
filter database. Each run happens in its own process (peak RSS per run) and reports
wall time per stage (read = scan + validation, filter = snapshot incl. the PNR join +
selection, write = all delta and metadata files), total, and the physical floor
measured in the same process: one sequential read of the extract plus writing the same
number of output bytes; and that floor with every output byte SHA-256'd as well
(``+sha``: each delta's digest goes into its ``.metadata`` and the ledger, so no way of
filtering can skip it). Beside wall time it reports the CPU seconds (user + system, all
threads) of the step and of the floor, which a busy shared machine disturbs less.

``--cli`` times the step as an operator or a task process runs it, ``cprsub filter`` in
a new process (start-up and imports included; stages not reported), against the same
floor: a real day's extract is of the 200,000-person size, where start-up counts. With
``--hit-rate 1`` every one of a subscriber's 20,000 PNRs is a person of the day (1.2 GB
written for 100 subscribers: the small day of issue 26).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "out"
SUBSCRIBERS = 1000
PNRS_PER_SUBSCRIBER = 20_000
HIT_RATE = 0.01


def _extract(persons: int) -> Path:
    path = OUT / f"bench-{persons}.L431101"
    if not path.exists():
        from cpr_abonnement.extract.generator import generate

        with open(path.with_suffix(".part"), "wb") as fh:
            generate(fh, production_date=dt.date(2026, 11, 26), persons=persons, seed=1)
        path.with_suffix(".part").rename(path)
    return path


def _filter_db(extract: Path, subscribers: int, pnrs_per_subscriber: int,
               hit_rate: float = HIT_RATE) -> Path:
    """``subscribers`` (1,000) with ``pnrs_per_subscriber`` (20,000) PNR rows each,
    ``hit_rate`` (1%) of them persons in ``extract``, plus the municipality, age and
    change-code subscribers in the same proportions (10%, 2%, 3%); built once (a few
    minutes at full size), cached."""
    rate = "" if hit_rate == HIT_RATE else f"-hits{hit_rate:g}"
    db = OUT / f"filters-{extract.stem}-{subscribers}x{pnrs_per_subscriber}{rate}.db"
    if db.exists():
        _upgrade(db)  # once here, not on every run's copy (0010 rebuilds a 20M-row index)
        return db
    from cpr_abonnement.extract.index import scan
    from cpr_abonnement.filters.pnr import PnrFilter
    from cpr_abonnement.reference import municipalities
    from cpr_abonnement.store.db import make_engine, upgrade
    from cpr_abonnement.subscriptions.service import SubscriptionService

    tmp = db.with_suffix(".part")
    tmp.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{tmp}")
    upgrade(engine)
    svc = SubscriptionService(engine, caller="bench", clock=lambda: dt.datetime(2026, 1, 1))
    uuids = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(subscribers)]
    municipal, aged, coded = (subscribers * p // 100 for p in (10, 12, 15))
    koms = sorted(c for c, m in municipalities().items() if m.kind == "municipality")
    for i, u in enumerate(uuids):
        svc.add_subscriber(u, f"IT system {i:04d}")
        if i < municipal:
            svc.add_municipality(u, koms[i % len(koms)])
        elif i < aged:
            svc.add_age_range(u, 20 + i % 60, 20 + i % 60)
        elif i < coded:
            svc.add_change_code(u, ["A04", "A33", "P03", "A47", "A13"][i % 5])
    day_pnrs = scan(extract).persons["pnr"].to_numpy()
    rng = np.random.default_rng(7)
    with engine.begin() as conn:
        for index in PnrFilter.__table__.indexes:
            index.drop(conn)
    engine.dispose()
    raw = sqlite3.connect(tmp)
    raw.execute("PRAGMA journal_mode=OFF")
    raw.execute("PRAGMA synchronous=OFF")
    hits = int(pnrs_per_subscriber * hit_rate)
    for sub_id in range(1, subscribers + 1):
        day, month = rng.integers(1, 29, pnrs_per_subscriber), rng.integers(1, 13,
                                                                              pnrs_per_subscriber)
        year, serial = rng.integers(0, 100, pnrs_per_subscriber), rng.integers(0, 10_000,
                                                                               pnrs_per_subscriber)
        pnrs = day * 100_000_000 + month * 1_000_000 + year * 10_000 + serial
        pnrs[:hits] = rng.choice(day_pnrs, hits, replace=False)
        pnrs = np.unique(pnrs)
        raw.executemany(
            "INSERT INTO filter_pnr (subscriber_id, pnr, added_at) VALUES (?, ?, ?)",
            ((sub_id, int(p), "2026-01-01 00:00:00.000000") for p in pnrs))
    raw.commit()
    raw.close()
    with engine.begin() as conn:
        for index in PnrFilter.__table__.indexes:
            index.create(conn)
    engine.dispose()
    tmp.rename(db)
    return db


def _upgrade(db: Path) -> None:
    """Bring a cached filter database built by an older revision to the current schema."""
    from cpr_abonnement.store.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    engine.dispose()


def _child(extract: str, db: str, subscribers: int, cli: bool = False) -> None:
    from cpr_abonnement.filter_step import filter_extract
    from cpr_abonnement.store.db import make_engine, upgrade

    work = Path(db).with_name(f"run-{subscribers}.db")
    _remove_db(work)  # including a stale -wal a previous run left behind
    shutil.copyfile(db, work)  # extract_run rows and active flags stay per run
    con = sqlite3.connect(work)
    con.execute("UPDATE subscriber SET active = (id <= ?)", (subscribers,))
    con.commit()
    con.close()
    out = OUT / "deltas"
    shutil.rmtree(out, ignore_errors=True)
    engine = make_engine(f"sqlite:///{work}")
    upgrade(engine)  # a cached database from an older revision is upgraded in place
    os.sync()  # no earlier writeback in the timed step
    as_of = dt.datetime(2026, 11, 26, 5)
    if cli:
        engine.dispose()
        t, cpu = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
        subprocess.run([str(Path(sys.executable).with_name("cprsub")), "filter", extract,
                        "--out", str(out), "--db", f"sqlite:///{work}",
                        "--as-of", as_of.isoformat()], check=True, stdout=subprocess.DEVNULL)
        total, cpu = time.perf_counter() - t, _cpu(resource.RUSAGE_CHILDREN) - cpu
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        files = [f for f in out.rglob("*") if f.is_file() and f.suffix != ".metadata"]
        written = sum(f.stat().st_size for f in files)
        stages = {"read": float("nan"), "filter": float("nan"), "write": float("nan")}
        persons, matches = -1, -1
    else:
        t, cpu = time.perf_counter(), _cpu()
        result = filter_extract(extract, engine, out, as_of=as_of)
        total, cpu = time.perf_counter() - t, _cpu() - cpu
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        written = sum(f.nbytes for f in result.files)
        stages, persons = result.seconds, result.persons
        matches = sum(f.persons for f in result.files)
    # The floor, same process, same file: one sequential read + writing as many bytes,
    # taken three times, each after a sync (else the writeback of the deltas just
    # written lands in it and its ratio swings from run to run); the median counts.
    shutil.rmtree(out, ignore_errors=True)
    floors = sorted(_floor(extract, written) for _ in range(3))
    hashed = sorted(_floor(extract, written, digest=True) for _ in range(3))
    _remove_db(work)
    print(json.dumps({"subscribers": subscribers, "persons": persons, **stages,
                      "total": total, "cpu": cpu, "rss_mb": rss, "output_bytes": written,
                      "matches": matches,
                      "floor": floors[1][0], "floor_cpu": floors[1][1], "floors": floors,
                      "floor_sha": hashed[1][0], "floors_sha": hashed}))


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    """CPU seconds of this process (or its reaped children) so far, every thread, user
    and system."""
    use = resource.getrusage(who)
    return use.ru_utime + use.ru_stime


def _floor(extract: str, written: int, *, digest: bool = False) -> tuple[float, float]:
    """Seconds (wall, CPU) to read ``extract`` once and write ``written`` bytes, after a
    sync. ``digest``: and SHA-256 them, on two threads, in 256 KiB pieces as the step
    does: every delta's digest goes into its ``.metadata`` and the ledger, so no
    implementation can skip it (the floor a step is fairly compared with)."""
    os.sync()
    t, cpu = time.perf_counter(), _cpu()
    with open(extract, "rb", buffering=0) as fh:
        buf = bytearray(64 << 20)
        while fh.readinto(buf):
            pass
    block = b"x" * (8 << 20)
    with open(OUT / "floor.bin", "wb") as fh:
        if digest:
            _write_hashed(fh, block, written)
        else:
            left = written
            while left > 0:
                fh.write(block[: min(left, len(block))])
                left -= len(block)
    seconds, cpu = time.perf_counter() - t, _cpu() - cpu
    (OUT / "floor.bin").unlink()
    return seconds, cpu


def _write_hashed(fh, block: bytes, written: int) -> None:
    """Write ``written`` bytes to ``fh`` and SHA-256 them in 256 KiB pieces, half of
    the pieces' hashing on a second thread (hashlib releases the GIL), one digest per
    thread as two deltas would have."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    piece = 256 << 10
    view = memoryview(block)
    lock = threading.Lock()

    def share(start: int) -> None:
        h = hashlib.sha256()
        for at in range(start, written, 2 * piece):
            chunk = view[at % len(block):][:min(piece, written - at)]
            h.update(chunk)
            with lock:
                fh.seek(at)
                fh.write(chunk)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(share, (0, piece)))


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _run(extract: Path, db: Path, subscribers: int, cli: bool) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", str(extract), str(db),
                           str(subscribers), *(["--cli"] if cli else [])],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"run with {subscribers} subscribers failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scaling", action="store_true")
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--subscribers", type=int, default=SUBSCRIBERS)
    ap.add_argument("--pnrs-per-subscriber", type=int, default=PNRS_PER_SUBSCRIBER)
    ap.add_argument("--active", type=int, nargs="+", metavar="N",
                    help="runs with only the first N subscribers of the database active")
    ap.add_argument("--hit-rate", type=float, default=HIT_RATE,
                    help="share of each subscriber's PNRs that are persons of the day (0.01)")
    ap.add_argument("--cli", action="store_true",
                    help="time `cprsub filter` in a process of its own, start-up included")
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]), args.cli)
        return
    OUT.mkdir(exist_ok=True)
    big = _extract(args.persons)
    t = time.perf_counter()
    db = _filter_db(big, args.subscribers, args.pnrs_per_subscriber, args.hit_rate)
    if time.perf_counter() - t > 1:
        print(f"built {db} in {time.perf_counter() - t:.0f} s")
    runs = [(big, n) for n in (args.active or [args.subscribers])]
    if args.scaling:
        small = _extract(100_000)
        runs = [(e, n) for e in (small, big) for n in (10, 100, args.subscribers)]
    print(f"{'persons':>9} {'subs':>5} {'read':>6} {'filter':>7} {'write':>6} {'total':>6} "
          f"{'floor':>6} {'x floor':>7} {'+sha':>6} {'x +sha':>6} {'CPU s':>6} "
          f"{'floor CPU':>9} {'RSS MB':>7} "
          f"{'matches':>9} {'output MB':>9}")
    for extract, n in runs:
        r = _run(extract, db, n, args.cli)
        print(f"{r['persons']:>9,} {n:>5} {r['read']:>6.2f} {r['filter']:>7.2f} "
              f"{r['write']:>6.2f} {r['total']:>6.2f} {r['floor']:>6.2f} "
              f"{r['total'] / r['floor']:>7.1f} {r['floor_sha']:>6.2f} "
              f"{r['total'] / r['floor_sha']:>6.1f} {r['cpu']:>6.2f} {r['floor_cpu']:>9.2f} "
              f"{r['rss_mb']:>7.0f} {r['matches']:>9,} "
              f"{r['output_bytes'] / 1e6:>9,.0f}")


if __name__ == "__main__":
    main()

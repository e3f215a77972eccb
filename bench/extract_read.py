"""Benchmark: read + person summary of a 1,000,000-person extract vs a plain read.

    .venv/bin/python bench/extract_read.py [--persons 1000000] [--repeat 3]

Generates the extract once (cached under bench/out/), then runs each measurement in
its own process so peak RSS is per stage: a plain sequential read of the file in
64 MiB blocks (the physical floor), a bare Python loop over its lines (what any
line-at-a-time parser costs at least), and ``scan`` (index + person summary). All read
from the page cache after a warm-up read. Each stage runs ``--repeat`` times and the
median is reported (a shared 2-core VM is noisy), with its CPU seconds (all threads).
The scan is timed from its call; importing NumPy and pandas, paid once per process, is
reported on its own line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).parent / "out"


def _child(stage: str, path: str) -> None:
    import resource

    imported = 0.0
    t, cpu = time.perf_counter(), _cpu()
    if stage == "plain":
        with open(path, "rb", buffering=0) as fh:
            buf = bytearray(64 * 1024 * 1024)
            while fh.readinto(buf):
                pass
        extra = {}
    elif stage == "lines":  # the cheapest per-line Python: iterate and look at the type
        counts: dict[bytes, int] = {}
        with open(path, "rb") as fh:
            for line in fh:
                counts[line[:3]] = counts.get(line[:3], 0) + 1
        extra = {}
    else:
        from cpr_abonnement.extract.index import scan

        imported = time.perf_counter() - t
        t, cpu = time.perf_counter(), _cpu()
        ix = scan(path)
        extra = {"persons": len(ix.persons), "records": ix.person_records}
    wall, cpu = time.perf_counter() - t, _cpu() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"stage": stage, "seconds": wall, "cpu": cpu, "import_seconds": imported,
                      "peak_rss_mb": rss, **extra}))


def _cpu() -> float:
    """CPU seconds of this process so far, every thread, user and system (a busy shared
    machine disturbs them less than wall time)."""
    import resource

    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _run(stage: str, path: Path, repeat: int = 1) -> dict:
    """Median run of ``stage`` (by time) over ``repeat`` fresh processes."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, __file__, "--child", stage, str(path)],
                             check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    runs.sort(key=lambda r: r["seconds"])
    return {**runs[len(runs) // 2], "all": [round(r["seconds"], 2) for r in runs]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=2)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    OUT.mkdir(exist_ok=True)
    path = OUT / f"bench-{args.persons}.L431101"
    if not path.exists():
        from cpr_abonnement.extract.generator import generate

        t = time.perf_counter()
        with open(path.with_suffix(".part"), "wb") as fh:
            generate(fh, production_date=dt.date(2026, 11, 26), persons=args.persons, seed=1)
        path.with_suffix(".part").rename(path)
        print(f"generated {path} in {time.perf_counter() - t:.1f} s")
    size_mb = path.stat().st_size / 1e6
    _run("plain", path)  # warm the page cache
    plain, lines, summary = (_run(stage, path, args.repeat) for stage in ("plain", "lines", "scan"))
    print(f"extract: {size_mb:,.0f} MB, {summary['persons']:,} persons, "
          f"{summary['records']:,} person records")
    for r in (plain, lines, summary):
        print(f"{r['stage']:>6}: {r['seconds']:6.2f} s  {size_mb / r['seconds']:7.0f} MB/s  "
              f"CPU {r['cpu']:6.2f} s  peak RSS {r['peak_rss_mb']:6.0f} MB  (runs: {r['all']})")
    print(f"import NumPy + pandas + package (once per process): {summary['import_seconds']:.2f} s")
    with_import = summary["seconds"] + summary["import_seconds"]
    print(f"scan/plain: {summary['seconds'] / plain['seconds']:.1f}x "
          f"({with_import / plain['seconds']:.1f}x counting the import), "
          f"{summary['persons'] / summary['seconds']:,.0f} persons/s; "
          f"CPU {summary['cpu'] / plain['cpu']:.1f}x the plain read's")


if __name__ == "__main__":
    main()

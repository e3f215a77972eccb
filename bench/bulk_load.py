"""Benchmark: bulk-load 1,000,000 PNR filters into one subscriber (embedded SQLite).

    .venv/bin/python bench/bulk_load.py [--pnrs 1000000] [--db URL]

Measures ``SubscriptionService.add_pnrs`` (what ``cprsub filters add-pnr --from-file``
and the bulk API call use): validation, duplicate detection and insert in one
transaction; then the same call again (everything ALREADY_EXISTED) and GetAllFilters.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import numpy as np

from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"


def synthetic_pnrs(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    day, month = rng.integers(1, 29, n), rng.integers(1, 13, n)
    year, serial = rng.integers(0, 100, n), rng.integers(0, 10000, n)
    return [f"{d:02d}{m:02d}{y:02d}{s:04d}" for d, m, y, s in zip(day, month, year, serial,
                                                                   strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pnrs", type=int, default=1_000_000)
    ap.add_argument("--db")
    args = ap.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp()}/filters.db"
    engine = make_engine(url)
    upgrade(engine)
    svc = SubscriptionService(engine, caller="bench")
    svc.add_subscriber(SYS, "bench")
    pnrs = synthetic_pnrs(args.pnrs)
    for label, fn in [("add (new)", lambda: svc.add_pnrs(SYS, pnrs)),
                      ("add (all existing)", lambda: svc.add_pnrs(SYS, pnrs)),
                      ("GetAllFilters", lambda: svc.get_all_filters(SYS))]:
        t = time.perf_counter()
        result = fn()
        took = time.perf_counter() - t
        detail = result.counts if hasattr(result, "counts") else f"{len(result.pnrs):,} PNRs"
        print(f"{label:>20}: {took:6.2f} s  {detail}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
          f"({engine.dialect.name})")


if __name__ == "__main__":
    main()

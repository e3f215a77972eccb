"""Byte-identical check across commits: the filter step's files, and a run's deliveries.

    PYTHONPATH=<checkout>/include .venv/bin/python bench/compare_outputs.py filter \\
        EXTRACT OUT > filter.json     # fixed subscribers, fixed clock: every file's SHA-256
    PYTHONPATH=<checkout>/include .venv/bin/python bench/compare_outputs.py demo \\
        <checkout>/var/demo > demo.json   # after the demo: delivered files and ledger rows

Run it with each checkout's package on ``PYTHONPATH`` and compare the JSON: ``filter``
builds the same filter database (20 subscribers of every filter type, written with a
fixed clock) and runs the filter step on ``EXTRACT`` with a fixed snapshot instant and
clock, so a commit's output depends on the code alone. ``demo`` lists what the demo's
DAG run delivered (SFTP and pick-up folders) and its ledger rows without their
timestamps (the demo runs on the real clock). The script imports only what every
commit since the re-layering began has: the filter step is ``filter_step`` today and
was ``process`` before.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import sqlite3
import sys
from pathlib import Path

AS_OF = dt.datetime(2026, 11, 26, 5)
SUBSCRIBERS = 20
#: Ledger columns that do not depend on when the run happened.
LEDGER_COLUMNS = ("subscriber_uuid", "file_name", "sha256", "persons", "records", "target",
                  "attempts", "outcome", "detail")


#: The one ``.metadata`` element a demo run takes from the real clock.
_PROCESSED_AT = re.compile(rb"<cpr:FirstProcessedAt>[^<]*</cpr:FirstProcessedAt>")


def _files(root: Path, *, clock_free: bool = False) -> dict[str, str]:
    """SHA-256 per file; ``clock_free`` blanks the processing instant in ``.metadata``
    (a demo runs on the real clock; the filter comparison has a fixed one)."""
    def content(p: Path) -> bytes:
        data = p.read_bytes()
        return _PROCESSED_AT.sub(b"", data) if clock_free and p.suffix == ".metadata" else data
    return {str(p.relative_to(root)): hashlib.sha256(content(p)).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _subscribers(engine, extract: str) -> None:
    """Every filter type, each a few times, and one subscriber with no filters."""
    from cpr_abonnement.extract.index import scan
    from cpr_abonnement.subscriptions.service import SubscriptionService

    svc = SubscriptionService(engine, caller="compare", clock=lambda: dt.datetime(2026, 1, 1))
    pnrs = [f"{p:010d}" for p in scan(extract).persons["pnr"].to_numpy()[::97].tolist()]
    for i in range(SUBSCRIBERS):
        uuid = f"{i:08x}-0000-4000-8000-{i:012x}"
        svc.add_subscriber(uuid, f"IT system {i:02d}", sftp_conn_id=f"sftp_{i}",
                           remote_dir=f"/in/{i}")
        kind = i % 5
        if kind == 0:
            for p in pnrs[i::SUBSCRIBERS]:
                svc.add_pnr(uuid, p)
        elif kind == 1:
            svc.add_municipality(uuid, ["101", "851", "461", "751"][i % 4])
        elif kind == 2:
            svc.add_age_range(uuid, 10 * (i % 7), 10 * (i % 7) + 9)
        elif kind == 3:
            svc.add_change_code(uuid, ["A01", "A04", "A33", "P03"][i % 4])


def filter_outputs(extract: str, out: Path) -> dict:
    try:
        from cpr_abonnement.filter_step import filter_extract
    except ImportError:  # before the filter step's rename
        from cpr_abonnement.process import filter_extract
    try:
        from cpr_abonnement.store.db import make_engine, upgrade
    except ImportError:  # before the filter database's room was store/
        from cpr_abonnement.subscriptions.db import make_engine, upgrade

    out.mkdir(parents=True, exist_ok=False)
    engine = make_engine(f"sqlite:///{out / 'filters.db'}")
    upgrade(engine)
    _subscribers(engine, extract)
    result = filter_extract(extract, engine, out / "deltas", as_of=AS_OF,
                            clock=lambda: dt.datetime(2026, 11, 26, 6))
    return {"persons": result.persons, "files": _files(out / "deltas")}


def demo_outputs(work: Path) -> dict:
    delivered = {folder: _files(work / folder, clock_free=True) for folder in ("sftp", "pickup")
                 if (work / folder).exists()}
    con = sqlite3.connect(work / "filters.db")
    rows = con.execute(
        f"SELECT r.task_number, r.production_date, {', '.join('d.' + c for c in LEDGER_COLUMNS)}"
        " FROM delivery d JOIN extract_run r ON r.id = d.extract_run_id"
        " ORDER BY r.production_date, d.subscriber_uuid").fetchall()
    con.close()
    return {"delivered": delivered, "ledger": [list(r) for r in rows]}


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    f = sub.add_parser("filter")
    f.add_argument("extract")
    f.add_argument("out", type=Path)
    d = sub.add_parser("demo")
    d.add_argument("work", type=Path)
    args = ap.parse_args()
    found = (filter_outputs(args.extract, args.out) if args.what == "filter"
             else demo_outputs(args.work))
    json.dump(found, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()

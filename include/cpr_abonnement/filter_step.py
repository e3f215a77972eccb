"""Filtering one extract for every subscriber: the step ``cprsub filter`` and the
Airflow task share.

read & index → structural validation → record the first processing (which fixes the
filter snapshot instant) → load the snapshot → select → write deltas (+ explain).
Nothing is written when the extract is invalid.

Validation happens once per run. Standalone (``cprsub filter``) this step validates;
in the DAG, ``pipeline.receive`` has validated (rules, expectations, chain) and
quarantines a bad file, so this step only proves it reads those very bytes: the SHA-256
computed while indexing must equal the one recorded at receive. The comparison is free
(the digest is computed during the read this step needs anyway to index the persons).
"""

from __future__ import annotations

import csv
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from cpr_abonnement.cpr_number import mask
from cpr_abonnement.deltas import DeltaFile, file_name, write_deltas
from cpr_abonnement.extract import index_store
from cpr_abonnement.extract.index import scan
from cpr_abonnement.extract.model import ExtractIndex
from cpr_abonnement.extract.validation import check
from cpr_abonnement.filters import selection as filtering
from cpr_abonnement.filters.base import Context
from cpr_abonnement.filters.snapshot import FilterSnapshot, load_snapshot
from cpr_abonnement.records import extract_runs
from cpr_abonnement.records.extract_runs import ExtractRecord
from cpr_abonnement.store.db import as_naive_utc


@dataclass
class FilterResult:
    extract: ExtractRecord
    persons: int
    files: list[DeltaFile]
    subscribers: list
    seconds: dict[str, float] = field(default_factory=dict)
    explain_files: list[str] = field(default_factory=list)


def filter_extract(path: str | Path, engine: Engine, out_dir: str | Path, *,
                   as_of: dt.datetime | None = None, explain: bool = False,
                   expect_date: dt.date | None = None,
                   validated_sha256: str | None = None,
                   clock: Callable[[], dt.datetime] | None = None) -> FilterResult:
    """Filter ``path`` for every active subscriber into ``out_dir/<uuid>/``.

    ``as_of`` is the snapshot instant to use if this is the extract's first
    processing (default: now by the database server's clock; ``clock`` only for tests);
    an extract processed before always reuses its recorded snapshot, so the output is
    byte-identical to the first run's.

    ``validated_sha256``: the digest of the file as validated by an earlier step, which
    saved its index beside it (:mod:`~cpr_abonnement.extract.index_store`); the file is
    then neither scanned nor validated again, only proven to have exactly that digest.
    Without it the file is scanned and validated here (``expect_date``: the production
    date it must carry).
    """
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    if validated_sha256 is None:
        index = scan(path, digest=True)
        check(index, expect_date=expect_date)
    else:  # validated before: its saved index, after proving the file is unchanged
        index = index_store.load(Path(path), expect_sha256=validated_sha256)
    seconds["read"] = time.perf_counter() - t

    start = index.start_record()
    production_date, previous_date = start.dates()
    record = extract_runs.register(
        engine, task_number=start.task_number, production_date=production_date,
        previous_date=previous_date, file_name=file_name(index),
        sha256=index.sha256 or "", persons=len(index.persons), records=index.person_records,
        clock=clock, as_of=as_naive_utc(as_of) if as_of else None)

    t = time.perf_counter()
    snapshot = load_snapshot(engine, record.filters_as_of, index.persons["pnr"].to_numpy())
    selection = filtering.select(index.persons, index.events, snapshot, production_date)
    seconds["filter"] = time.perf_counter() - t

    t = time.perf_counter()
    out = Path(out_dir)
    files = write_deltas(index, selection, snapshot.subscribers, out,
                         first_processed_at=record.first_processed_at,
                         filters_as_of=record.filters_as_of)
    seconds["write"] = time.perf_counter() - t
    result = FilterResult(record, len(index.persons), files, snapshot.subscribers, seconds)
    if explain:
        result.explain_files = write_explanations(index, snapshot, selection, out)
    return result


def write_explanations(index: ExtractIndex, snapshot: FilterSnapshot,
                       selection: filtering.Selection, out: Path) -> list[str]:
    """``<uuid>/<file>.explain.csv``: masked PNR and the filter(s) that selected it."""
    production_date, _ = index.start_record().dates()
    written = []
    bounds = selection.bounds()
    pnrs = index.pnr_text()
    first_line = index.persons["first_line"].to_numpy()
    context = Context(index.persons, index.events, production_date)
    for s, sub in enumerate(snapshot.subscribers):
        why = filtering.explain(context, snapshot, selection, s)
        who = selection.person[bounds[s] : bounds[s + 1]]
        path = out / sub.uuid / f"{file_name(index)}.explain.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["pnr_masked", "first_line", "selected_by"])
            for person, reason in zip(who.tolist(), why, strict=True):
                w.writerow([mask(pnrs.iloc[person]), int(first_line[person]), reason])
        written.append(str(path))
    return written

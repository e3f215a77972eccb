"""Per-subscriber delta files and their ``.metadata`` companions (product.md §4).

Every active subscriber gets ``<out>/<UserSystemUUID>/D<YYMMDD>.L<task>`` also when
nothing matched (000 and 999 only: a missing file would break the subscriber's
production-date chain check), plus ``<name>.metadata``. Both are deterministic for a
given extract and filter snapshot: the metadata holds no clock reading other than the
recorded first-processing time. Files are written under a temporary name and renamed,
so nobody ever reads half a file. (No fsync: this is staging; a crashed task is rerun
and rewrites the same bytes.)
"""

from __future__ import annotations

import datetime as dt
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cpr_abonnement.extract.model import ExtractIndex
from cpr_abonnement.extract.naming import extract_name
from cpr_abonnement.extract.writer import open_source, write_persons
from cpr_abonnement.filters.selection import Selection
from cpr_abonnement.subscriptions.snapshot import Subscription

METADATA_SUFFIX = ".metadata"
WRITERS = 2
FORMAT = "CPR change extract U12170-P (ISO-8859-1), thinned to the subscriber's filters"


@dataclass(frozen=True, slots=True)
class DeltaFile:
    """One written delta: where it is and what the metadata file says about it."""

    subscriber: str
    name: str
    path: str
    persons: int
    records: int
    nbytes: int
    sha256: str

    @property
    def metadata_path(self) -> str:
        return self.path + METADATA_SUFFIX


def file_name(index: ExtractIndex) -> str:
    """CPR's name for the extract: ``D<YYMMDD>.L<task number>`` from record 000."""
    start = index.start
    assert start is not None and start.production_date is not None
    return extract_name(start.production_date, start.task_number)


def _utc(t: dt.datetime) -> str:
    return t.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def metadata(index: ExtractIndex, sub: Subscription, delta: DeltaFile, *,
             first_processed_at: dt.datetime, filters_as_of: dt.datetime) -> bytes:
    start = index.start
    assert start is not None
    doc = {
        "subscriber": sub.uuid,
        "file": delta.name,
        "format": FORMAT,
        "task_number": start.task_number,
        "production_date": str(start.production_date),
        "previous_production_date": str(start.previous_date),
        "persons": delta.persons,
        "records": delta.records,
        "bytes": delta.nbytes,
        "sha256": delta.sha256,
        "extract_first_processed_at": _utc(first_processed_at),
        "filters_as_of": _utc(filters_as_of),
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _atomic_write(path: Path, data_writer) -> object:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            result = data_writer(fh)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return result


def write_deltas(index: ExtractIndex, selection: Selection, subscribers: list[Subscription],
                 out_dir: Path, *, first_processed_at: dt.datetime,
                 filters_as_of: dt.datetime) -> list[DeltaFile]:
    """Write every subscriber's delta and metadata; returns them in subscriber order."""
    name = file_name(index)
    bounds = selection.bounds()

    def one(s: int, sub: Subscription, source) -> DeltaFile:
        folder = out_dir / sub.uuid
        folder.mkdir(parents=True, exist_ok=True)
        persons = np.sort(selection.person[bounds[s] : bounds[s + 1]])
        path = folder / name
        stats = _atomic_write(path, lambda fh: write_persons(index, persons, fh, source))
        delta = DeltaFile(sub.uuid, name, str(path), stats.persons, stats.records,
                          stats.nbytes, stats.sha256)
        meta = metadata(index, sub, delta, first_processed_at=first_processed_at,
                        filters_as_of=filters_as_of)
        _atomic_write(Path(delta.metadata_path), lambda fh: fh.write(meta))
        return delta

    # Two threads: writing files and hashing release the GIL, so one subscriber's file
    # is written while the next one's records are gathered.
    with open_source(index) as source, ThreadPoolExecutor(max_workers=WRITERS) as pool:
        return list(pool.map(lambda item: one(*item, source), enumerate(subscribers)))

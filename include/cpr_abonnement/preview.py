"""Preview before go-live (``cprsub filter preview``): what one subscriber would have
received from the last processed extracts with its *current* filters.

For each of the latest processed extracts (``extract_run``) whose file is still in
staging (``<CPRSUB_STAGING>/<day>/extract/<file>``), the extract is read (its saved
index when present and matching the recorded SHA-256, else scanned), the filters in
force now are applied exactly as the filter step applies them (same snapshot loader,
same selection, same record count as the writer), and only the figures are kept: no
file is written and no PNR is shown.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cpr_abonnement.errors import UnknownSubscriber
from cpr_abonnement.extract import index_store
from cpr_abonnement.extract.index import scan
from cpr_abonnement.extract.writer import copy_runs, spans_of
from cpr_abonnement.filters import selection as filtering
from cpr_abonnement.filters.snapshot import load_snapshot
from cpr_abonnement.settings import Settings
from cpr_abonnement.store.models import ExtractRun


@dataclass(frozen=True)
class PreviewDay:
    """One extract's figures for the subscriber (None when the file is gone)."""

    production_date: dt.date
    file_name: str
    persons: int | None
    records: int | None

    def line(self) -> str:
        if self.persons is None:
            return f"{self.production_date}  {self.file_name}  not in staging any more"
        return (f"{self.production_date}  {self.file_name}  {self.persons:>9,} persons "
                f"{self.records:>10,} records")


def _index(path: Path, sha256: str):
    """The extract's saved index (proven to be of these bytes), else a fresh scan."""
    if index_store.index_path(path).exists():
        return index_store.load(path, expect_sha256=sha256)
    return scan(path, digest=True)


def _figures(path: Path, sha256: str, engine: Engine, uuid: str, as_of: dt.datetime
             ) -> tuple[int, int]:
    index = _index(path, sha256)
    snapshot = load_snapshot(engine, as_of, index.persons["pnr"].to_numpy())
    position = next((i for i, s in enumerate(snapshot.subscribers) if s.uuid == uuid), None)
    if position is None:
        raise UnknownSubscriber(f"no active subscriber with UserSystemUUID {uuid}")
    production_date, _ = index.start_record().dates()
    chosen = filtering.select(index.persons, index.events, snapshot, production_date)
    persons = chosen.persons_of(position)
    return len(persons), copy_runs(index, spans_of(index, persons))[2]


def preview(engine: Engine, settings: Settings, uuid: str, *, days: int,
            as_of: dt.datetime) -> list[PreviewDay]:
    """The subscriber's figures for the last ``days`` processed extracts, newest first,
    with the filters in force at ``as_of`` (naive UTC; normally now)."""
    from cpr_abonnement.staging import is_local, local_copy, stage_dir

    with Session(engine) as s:
        runs = list(s.scalars(select(ExtractRun).order_by(
            ExtractRun.production_date.desc(), ExtractRun.id.desc()).limit(days)))
    out = []
    for run in runs:
        staged = stage_dir(settings, run.production_date) / "extract" / run.file_name
        if not staged.exists():
            out.append(PreviewDay(run.production_date, run.file_name, None, None))
            continue
        with tempfile.TemporaryDirectory(prefix="cprsub-preview-") as scratch:
            path = local_copy(staged, Path(scratch))
            if not is_local(staged):
                sidecar = staged.parent / (staged.name + index_store.SUFFIX)
                if sidecar.exists():
                    local_copy(sidecar, Path(scratch))
            persons, records = _figures(path, run.extract_sha256, engine, uuid, as_of)
        out.append(PreviewDay(run.production_date, run.file_name, persons, records))
    return out

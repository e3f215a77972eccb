"""Applying an extract to the replica: a status extract loads the population, each day's
change extract replaces the blocks of the persons it carries.

Rules, and why:

* **A block replaces the person.** A change extract carries the whole person whenever
  it carries the person (``cpr-format.md`` §1.1), so the replica never merges fields:
  it stores the block as received and reads it at look-up time
  (:mod:`cpr_abonnement.replica.person`).
* **Production-date order.** A change extract must chain onto the newest one applied
  (its PRODDTOFORRIG is that production date, the filter step's rule,
  :func:`~cpr_abonnement.extract.validation.chain_gap`); a gap stops the update and
  alerts unless the run accepts it (``allow_gap``). An *older* extract (a backfill of
  a missed day) is applied without the chain check and never replaces a person's newer
  block: each row keeps the production date it came from.
* **Idempotent.** An extract already applied (same SHA-256) changes nothing.
* **Nothing before a status load.** Until a status extract has been loaded there is no
  replica to keep; change extracts are then refused with what to do
  (:class:`~cpr_abonnement.errors.ReplicaNotLoaded`), which the DAG turns into a skip.
"""

from __future__ import annotations

import datetime as dt
import logging
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session

from cpr_abonnement.errors import ReplicaChainGap, ReplicaNotLoaded
from cpr_abonnement.extract.index import scan
from cpr_abonnement.extract.layouts import LAYOUTS
from cpr_abonnement.extract.model import ExtractIndex
from cpr_abonnement.extract.validation import chain_gap
from cpr_abonnement.replica.state import CHANGE, head, loaded
from cpr_abonnement.store.db import writing
from cpr_abonnement.store.models import ReplicaExtract, ReplicaPerson

log = logging.getLogger(__name__)

#: Persons written per statement: large enough that round trips do not dominate,
#: small enough that one batch's blocks (~1.3 kB each) stay a few megabytes.
BATCH = 2_000
_PNRGAELD = LAYOUTS["001"]["PNRGAELD"].slice
#: How much of the mapped file is read before its pages are released.
RELEASE = 64 << 20


@dataclass(frozen=True)
class Applied:
    """What applying one extract did."""

    file_name: str
    kind: str
    production_date: dt.date
    persons: int
    written: int
    kept_newer: int
    #: The same file had been applied before: nothing was changed.
    already: bool = False

    def line(self) -> str:
        if self.already:
            return f"{self.file_name} was applied to the replica before: nothing changed"
        kept = (f", {self.kept_newer:,} kept (the replica holds newer data)"
                if self.kept_newer else "")
        return (f"{self.kind} extract {self.file_name} ({self.production_date}) applied to "
                f"the replica: {self.written:,} of {self.persons:,} person(s) written{kept}")


def person_blocks(path: Path, index: ExtractIndex) -> Iterator[tuple[int, bytes]]:
    """Each person of the extract as (row of ``index.persons``, block), the block being the
    person's records in file order joined by LF (a CRLF file's CRs dropped), read by
    the index's byte spans: records scattered through the file (003 at the end) join
    their person."""
    order, starts = (a.tolist() for a in index.person_spans)  # plain ints: no NumPy
    offsets, sizes = index.span_offset.tolist(), index.span_nbytes.tolist()  # per item
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        released = 0
        for person in range(len(index.persons)):
            first, last = starts[person], starts[person + 1]
            behind = offsets[order[first]] // mmap.PAGESIZE * mmap.PAGESIZE
            if behind - released >= RELEASE:
                # Persons come in file order: the pages behind are done (a scattered
                # record there is read again from the page cache). Dropped from this
                # process, memory does not grow with the file.
                data.madvise(mmap.MADV_DONTNEED, released, behind - released)
                released = behind
            if last - first == 1:  # most persons: one run of consecutive lines
                at = offsets[order[first]]
                block = data[at:at + sizes[order[first]]]
            else:
                block = b"".join(data[offsets[i]:offsets[i] + sizes[i]]
                                 for i in order[first:last])
            if index.line_ending == b"\r\n":
                block = block.replace(b"\r\n", b"\n")
            yield person, block if block.endswith(b"\n") else block + b"\n"


def _current_pnr(block: bytes, status: int) -> str | None:
    if status not in (50, 60):
        return None
    for line in block.split(b"\n", 8):
        if line.startswith(b"001"):
            value = line[_PNRGAELD].decode("ascii", "replace").strip()
            return value or None
    return None


def apply_extract(engine: Engine, path: Path, index: ExtractIndex | None = None, *,
                  kind: str, file_name: str | None = None, allow_gap: bool = False,
                  now: Callable[[], dt.datetime] | None = None) -> Applied:
    """Apply the validated extract at ``path`` (``index``: its scan, made if not given)."""
    index = index if index is not None and index.sha256 else scan(path, digest=True)
    start = index.start_record()
    name = file_name or Path(path).name
    day = start.production_date
    with Session(engine) as s:
        before = s.scalar(select(ReplicaExtract).where(ReplicaExtract.sha256 == index.sha256))
    if before is not None:
        return Applied(name, before.kind, before.production_date, before.persons,
                       before.written, before.kept_newer, already=True)
    newest = head(engine)
    if kind == CHANGE:
        if not loaded(engine):
            raise ReplicaNotLoaded(
                f"{name}: the replica has not been loaded from a status extract yet; load "
                f"one with `cprsub replica load FILE` (change extracts apply on top of it)")
        gap = chain_gap(start, newest) if newest is not None and day > newest else None
        if gap is not None and not allow_gap:
            raise ReplicaChainGap(f"{name}: {gap.detail}. Apply the missing day(s) first (clear "
                                  f"their update_replica task), or re-run with allow_gap=true.")
    persons = len(index.persons)
    statuses = index.persons["status"].tolist()
    municipalities = index.persons["municipality"].tolist()
    pnrs = index.pnr_text().tolist()
    clock = now or (lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))
    with writing(engine) as s:
        extract_id = s.scalar(insert(ReplicaExtract).values(
            file_name=name, kind=kind, production_date=day, previous_date=start.previous_date,
            sha256=index.sha256, persons=persons, written=0, kept_newer=0,
            applied_at=clock()).returning(ReplicaExtract.id))

        def rows() -> Iterator[tuple]:
            for person, block in person_blocks(Path(path), index):
                status, kom = statuses[person], municipalities[person]
                yield (pnrs[person], _current_pnr(block, status), status,
                       kom if kom >= 0 else None, block, day, extract_id)

        write = _copy_in if s.get_bind().dialect.name == "postgresql" else _insert_batches
        kept = write(s, rows(), older=newest is not None and day < newest)
        row = s.get(ReplicaExtract, extract_id)
        row.written, row.kept_newer = persons - kept, kept
    applied = Applied(name, kind, day, persons, persons - kept, kept)
    log.info("%s", applied.line())
    return applied


_COLUMNS = ("pnr", "current_pnr", "status", "municipality", "block", "production_date",
            "extract_id")


def _insert_batches(s: Session, rows: Iterator[tuple], *, older: bool) -> int:
    """SQLite: upserts of :data:`BATCH` rows; returns how many persons kept their newer
    stored block (only an older extract, a backfill, can meet newer data)."""
    kept = 0
    while batch := [dict(zip(_COLUMNS, r, strict=True)) for r in islice(rows, BATCH)]:
        if older:
            newer = set(s.scalars(select(ReplicaPerson.pnr).where(
                ReplicaPerson.pnr.in_([r["pnr"] for r in batch]),
                ReplicaPerson.production_date > batch[0]["production_date"])))
            kept += len(newer)
            batch = [r for r in batch if r["pnr"] not in newer]
        if batch:
            s.execute(_upsert(s), batch)
    return kept


def _upsert(s: Session):
    """INSERT … ON CONFLICT (pnr) DO UPDATE, replacing a stored block only with one at
    least as new."""
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    stmt = sqlite_insert(ReplicaPerson)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[ReplicaPerson.pnr],
        set_={c: getattr(new, c) for c in _COLUMNS[1:]},
        where=ReplicaPerson.production_date <= new.production_date)


def _copy_in(s: Session, rows: Iterator[tuple], *, older: bool) -> int:
    """PostgreSQL: every row through ``COPY`` into a temporary table, then one
    ``INSERT … SELECT … ON CONFLICT`` (row-by-row upserts ran at a sixteenth of the
    server's bulk-load speed: ``bench/replica.py``); into an empty replica (the first
    status load) ``COPY`` goes straight into the table."""
    columns = ", ".join(_COLUMNS)
    cursor = s.connection().connection.driver_connection.cursor()
    if s.scalar(select(ReplicaPerson.pnr).limit(1)) is None:
        # The first load: nothing to meet, so straight into the table (half the writing).
        with cursor.copy(f"COPY replica_person ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return 0
    s.execute(text("CREATE TEMPORARY TABLE replica_incoming (LIKE replica_person) "
                   "ON COMMIT DROP"))
    with cursor.copy(f"COPY replica_incoming ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    kept = s.scalar(text(
        "SELECT count(*) FROM replica_incoming i JOIN replica_person p USING (pnr) "
        "WHERE p.production_date > i.production_date")) if older else 0
    updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
    s.execute(text(f"INSERT INTO replica_person ({columns}) SELECT {columns} FROM "
                   f"replica_incoming ON CONFLICT (pnr) DO UPDATE SET {updates} "
                   f"WHERE replica_person.production_date <= excluded.production_date"))
    return kept or 0

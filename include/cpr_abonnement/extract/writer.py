"""Write a delta file: the source extract thinned to a set of persons.

What a subscriber receives must look exactly like CPR's own extract (product.md §3):
the 000 record copied unchanged, every record of each chosen person copied byte for
byte in source order, 910/997 never copied, and the 999 counter recomputed. Records
are copied from the source file's bytes, never re-serialised from parsed fields, so
unknown trailing columns and Latin-1 text survive untouched (``cpr-format.md`` §1.6).
"""

from __future__ import annotations

import hashlib
import mmap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from cpr_abonnement.errors import ExtractError
from cpr_abonnement.extract.layouts import LAYOUTS
from cpr_abonnement.extract.model import ExtractIndex


@dataclass(frozen=True, slots=True)
class DeltaStats:
    """What was written: counts for the summary and the hash for the metadata file."""

    persons: int
    records: int
    nbytes: int
    sha256: str


def trailer(index: ExtractIndex, counter: int) -> bytes:
    """The source's 999 line with TAELLER replaced, and the source's terminator."""
    if index.end is None:
        raise ExtractError("the extract has no 999 end record", record_type="999")
    field = LAYOUTS["999"]["TAELLER"]
    line = bytearray(index.end.raw.ljust(field.end, b" "))
    line[field.slice] = f"{counter:0{field.width}d}".encode("ascii")
    return bytes(line) + index.end.terminator


def spans_of(index: ExtractIndex, persons: np.ndarray) -> np.ndarray:
    """Rows of the span table holding the given persons' records, in file order.

    Cost grows with the persons asked for, not with the extract, so a thousand
    subscribers cost the sum of their matches rather than a thousand full passes.
    """
    order, starts = index.person_spans
    persons = np.asarray(persons, dtype=np.int64)
    lo, hi = starts[persons], starts[persons + 1]
    lens = hi - lo
    flat = np.repeat(lo - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
    return np.sort(order[flat])


def copy_runs(index: ExtractIndex, spans: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Byte ranges to copy for span rows (file order), adjacent spans merged.

    Returns run start offsets, run end offsets and the number of records they hold.
    """
    off = index.span_offset[spans]
    end = off + index.span_nbytes[spans]
    if len(off) == 0:
        return off, end, 0
    joined = np.concatenate(([False], off[1:] == end[:-1]))
    first = np.flatnonzero(~joined)
    last = np.concatenate((first[1:] - 1, [len(off) - 1]))
    return off[first], end[last], int(index.span_records[spans].sum())


_BLOCK = 8 << 20


class _HashingWriter:
    def __init__(self, out: BinaryIO) -> None:
        self.out, self.hash, self.nbytes = out, hashlib.sha256(), 0

    def write(self, data: bytes | memoryview) -> None:
        self.out.write(data)
        self.hash.update(data)
        self.nbytes += len(data)


def write_persons(index: ExtractIndex, persons: np.ndarray, out: BinaryIO,
                  source: mmap.mmap | None = None) -> DeltaStats:
    """Write a delta holding ``persons`` (rows of ``index.persons``, no duplicates).

    ``source`` is an open read-only map of the extract, for callers writing many deltas.
    """
    start = index.start_record()
    starts, ends, records = copy_runs(index, spans_of(index, persons))
    w = _HashingWriter(out)
    w.write(start.raw + start.terminator)
    if len(starts):
        with _source(index, source) as mm:
            view = memoryview(mm)
            # Runs are mostly one person (~1 kB): gather them into large blocks so the
            # file and the hash see a few big writes instead of millions of small ones.
            block = bytearray()
            try:
                for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                    block += view[s:e]
                    if len(block) >= _BLOCK:
                        w.write(block)
                        block = bytearray()
                w.write(block)
            finally:
                view.release()
    w.write(trailer(index, records))
    return DeltaStats(len(persons), records, w.nbytes, w.hash.hexdigest())


@contextmanager
def open_source(index: ExtractIndex) -> Iterator[mmap.mmap]:
    """A read-only map of the extract, shared by the writes of many deltas."""
    with open(index.path, "rb") as src, mmap.mmap(src.fileno(), 0,
                                                    access=mmap.ACCESS_READ) as mm:
        yield mm


@contextmanager
def _source(index: ExtractIndex, source: mmap.mmap | None) -> Iterator[mmap.mmap]:
    if source is not None:
        yield source
    else:
        with open_source(index) as mm:
            yield mm

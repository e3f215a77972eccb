"""One streaming pass over a change extract: the index everything downstream uses.

:func:`scan` reads the file in fixed-size blocks cut at line ends (memory does not
grow with the file) and turns each block into NumPy arrays: line starts, record types,
PNRs. Blocks are indexed independently, by one thread per core (NumPy releases the GIL
in most of its loops: two threads index 1.4x as fast as one on two cores), and merged in
file order; per line the work is a few dozen whole-array passes,
with fields read eight bytes at a time rather than byte by byte. From the blocks it
keeps, per person, what filtering needs (birth date, status, current municipality,
event codes) and *where the person's records are*: a list of byte spans, so a writer
can later copy records byte for byte without parsing them again. Records are grouped
by the PNR in columns 4-13, never by adjacency, because some files put all 003 records
at the end (``cpr-format.md`` §1.1).

Memory is proportional to the number of persons and spans (a span is a run of
consecutive lines of one person, so normally one or two per person), not to the
number of bytes or records. Structural problems found on the way (unknown record
types, bad PNRs, implausible lengths, control characters, a person's 001 twice) are
collected with their line numbers so
:mod:`cpr_abonnement.extract.validation` can report every broken rule at once.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from cpr_abonnement.errors import ExtractError, RecordFormatError
from cpr_abonnement.extract.blocks import (
    AFLEDTMRK,
    CHUNK_SIZE,
    HAENDELSE,
    MAX_LINE,
    MAX_WORKERS,
    PAD,
    Block,
    index_block,
    parse_d8,
)
from cpr_abonnement.extract.layouts import (
    ENCODING,
    LAYOUTS,
    numeric,
)
from cpr_abonnement.extract.model import (
    MAX_EXAMPLES,
    EndRecord,
    ExtractIndex,
    RuleViolations,
    StartRecord,
)


class _Merger:
    """Takes indexed blocks in file order and shifts them into file coordinates."""

    def __init__(self) -> None:
        self.lines = 0
        self.span_count = 0
        self.terminated = 0
        self.crlf = 0
        self.line_ending: bytes | None = None
        self.first_lf_line: int | None = None
        self.first_crlf_line: int | None = None
        self.start: StartRecord | None = None
        self.end: EndRecord | None = None
        self.start_lines: list[int] = []
        self.end_lines: list[int] = []
        self.counts = np.zeros(1000, dtype=np.int64)
        self.spans: list[tuple[np.ndarray, ...]] = []
        self.p001: list[tuple[np.ndarray, ...]] = []
        self.p002: list[tuple[np.ndarray, ...]] = []
        self.p099: list[tuple[np.ndarray, ...]] = []
        self.violations: dict[str, RuleViolations] = {}
        self.last_terminator = b""

    def violation(self, rule: str, error: ExtractError) -> None:
        self.violations.setdefault(rule, RuleViolations(rule)).add(error)

    def add(self, block: Block, offset: int) -> None:
        """Append ``block``, which starts at byte ``offset`` of the file."""
        line_no = self.lines + 1  # of the block's first line
        if block.too_long is not None:
            raise _not_line_based(line_no + block.too_long)
        if self.line_ending is None and block.first_crlf is not None:
            self.line_ending = b"\r\n" if block.first_crlf else b"\n"
        self.terminated += block.terminated
        self.crlf += block.crlf
        if self.first_lf_line is None and block.first_lf_line is not None:
            self.first_lf_line = line_no + block.first_lf_line
        if self.first_crlf_line is None and block.first_crlf_line is not None:
            self.first_crlf_line = line_no + block.first_crlf_line
        self.counts += block.counts
        for rule, (count, pending) in block.problems.items():
            seen = self.violations.setdefault(rule, RuleViolations(rule))
            seen.count += count
            room = max(0, MAX_EXAMPLES - len(seen.examples))
            seen.examples += [make(line=line_no + i) for i, make in pending[:room]]
        for rtype, line, i, start, term in block.frames:
            self._frame_record(rtype, line, line_no + i, offset + start, term)
        # Shifted in place: the block's arrays are the merger's now (no copies to fault in).
        off, _, _, pnr, first, _ = block.spans
        off += offset
        first += line_no
        self.spans.append(block.spans)
        for merged, part in ((self.p001, block.p001), (self.p002, block.p002),
                             (self.p099, block.p099)):
            span = part[0]
            span += self.span_count
            merged.append(part)
        line_of_001 = block.p001[3]
        line_of_001 += line_no
        self.span_count += len(pnr)
        self.lines += block.lines
        self.last_terminator = block.last_terminator

    @property
    def mixed_endings(self) -> int:
        """Terminated lines that end differently from the file's first line."""
        if self.line_ending == b"\r\n":
            return self.terminated - self.crlf
        return self.crlf

    @property
    def first_mixed_ending(self) -> int | None:
        """The first line that ends differently from the file's first line."""
        return self.first_lf_line if self.line_ending == b"\r\n" else self.first_crlf_line

    def _frame_record(
        self, rtype: int, line: bytes, line_no: int, offset: int, term: bytes
    ) -> None:
        if rtype == 0:
            self.start_lines.append(line_no)
            if self.start is None:
                lay = LAYOUTS["000"]
                prod, prev = lay.field(line, "PRODDTO"), lay.field(line, "PRODDTOFORRIG")
                self.start = StartRecord(
                    line_no, line, term, lay.field(line, "OPGAVENR"),
                    parse_d8(prod), parse_d8(prev), prod, prev,
                )
        else:
            self.end_lines.append(line_no)
            counter = LAYOUTS["999"].field(line, "TAELLER")
            self.end = EndRecord(
                line_no, offset, line, term, int(counter) if numeric(counter) else None
            )


def _not_line_based(line_no: int) -> RecordFormatError:
    return RecordFormatError(
        f"no line terminator within {MAX_LINE} bytes; a change extract has one record per "
        "line (LF or CRLF)", line=line_no)


def _first_per_person(person: np.ndarray, n: int, *values: np.ndarray):
    """The persons (of ``n``) that have rows, and each one's first row in file order."""
    first = np.full(n, len(person), dtype=np.int64)
    np.minimum.at(first, person, np.arange(len(person)))
    who = np.flatnonzero(first < len(person))
    return who, *(v[first[who]] for v in values)


def _one_001_per_person(sc: _Merger, person_of_001: np.ndarray, line_of_001: np.ndarray,
                        pnr: np.ndarray) -> None:
    """A person's 001 comes once: a second one means the person's block was delivered
    twice (and would reach subscribers twice). Names the lines, with the PNR masked."""
    per_person = np.bincount(person_of_001, minlength=len(pnr))
    twice = np.flatnonzero(per_person > 1)
    if not len(twice):
        return
    found = RuleViolations("one 001 per person", count=len(twice))
    sc.violations[found.rule] = found
    for p in twice[:MAX_EXAMPLES].tolist():
        lines = np.sort(line_of_001[person_of_001 == p]).tolist()
        shown = ", ".join(map(str, lines[:-1])) + f" and {lines[-1]}"
        found.examples.append(RecordFormatError(
            f"{len(lines)} 001 records for one person (lines {shown}); a person's block "
            "comes once per extract", line=lines[1], record_type="001",
            pnr=f"{int(pnr[p]):010d}"))


def _concat(parts: list[tuple[np.ndarray, ...]], k: int, dtype) -> list[np.ndarray]:
    if not parts:
        return [np.empty(0, dtype=dtype) for _ in range(k)]
    return [np.concatenate([p[i] for p in parts]) for i in range(k)]


def _available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def scan(
    path: str | Path,
    *,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
    digest: bool = False,
    workers: int | None = None,
) -> ExtractIndex:
    """Read ``path`` once and build its :class:`ExtractIndex`.

    ``progress(bytes_done, bytes_total)`` is called after each block. With ``digest``
    the SHA-256 of the file is computed on the way (``ExtractIndex.sha256``). The only error
    raised is for a file that is not line-based at all; every other problem is
    recorded in ``violations`` for validation to report.

    This thread reads blocks and cuts them at their last line end; ``workers`` threads
    (default: one per available core, at most :data:`MAX_WORKERS`) index them
    concurrently; results are merged strictly in file order. Memory: ``workers + 1``
    buffers of ``chunk_size`` plus one block's arrays per worker, whatever the file size.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
    path = Path(path)
    size = path.stat().st_size
    # A small file needs neither big buffers nor more threads than it has blocks.
    chunk_size = min(chunk_size, max(size, 1))
    workers = min(workers or min(MAX_WORKERS, _available_cores()), -(-size // chunk_size) or 1)
    merger = _Merger()
    hasher = hashlib.sha256() if digest else None
    # +PAD: room to read fixed-width columns past the last line of a block.
    free = []
    for _ in range(workers + 1):
        raw = bytearray(chunk_size + MAX_LINE + PAD)
        free.append((raw, np.frombuffer(raw, dtype=np.uint8)))
    pending: deque[tuple[Future, int, tuple[bytearray, np.ndarray]]] = deque()

    def settle_oldest() -> None:
        future, offset, buffer = pending.popleft()
        merger.add(future.result(), offset)
        free.append(buffer)

    def take() -> tuple[bytearray, np.ndarray]:
        if not free:
            settle_oldest()
        return free.pop()

    with open(path, "rb") as fh, ThreadPoolExecutor(max_workers=workers) as pool:
        raw, arr = take()
        carry, base, done = 0, 0, 0
        while True:
            got = fh.readinto(memoryview(raw)[carry : carry + chunk_size])
            if hasher is not None:
                hasher.update(memoryview(raw)[carry : carry + got])
            done += got
            total = carry + got
            if got == 0:
                if total:  # a last line without terminator
                    pending.append((pool.submit(index_block, arr, total, True), base,
                                    (raw, arr)))
                break
            cut = raw.rfind(b"\n", 0, total) + 1
            if cut:
                pending.append((pool.submit(index_block, arr, cut, False), base, (raw, arr)))
                base += cut
            if total - cut > MAX_LINE:  # the unfinished last line is already too long
                while pending:
                    settle_oldest()  # raises instead if an earlier line was too long
                raise _not_line_based(merger.lines + 1)
            if not cut:
                carry = total
                continue
            carry = total - cut
            nxt_raw, nxt_arr = take()
            memoryview(nxt_raw)[:carry] = memoryview(raw)[cut:total]
            raw, arr = nxt_raw, nxt_arr
            if progress:
                progress(done, size)
        while pending:
            settle_oldest()
        # Events are decoded on a worker while this thread builds the person table.
        index = _finish(merger, path, size, pool.submit(_events, merger))
    if progress:
        progress(done, size)
    index.sha256 = hasher.hexdigest() if hasher is not None else None
    return index


def _events(sc: _Merger) -> tuple[np.ndarray, pd.Categorical, pd.Categorical]:
    """The 099 records' spans, event codes and derived markings, decoded."""
    span, code, mark = _concat(sc.p099, 3, np.int64)
    return span, _unpack(code, HAENDELSE.width), _unpack(mark, AFLEDTMRK.width)


def _finish(sc: _Merger, path: Path, size: int, events: Future) -> ExtractIndex:
    off, nbytes, nrec, span_pnr, span_line, span_birth = _concat(sc.spans, 6, np.int64)
    # Persons in order of first appearance; factorize hashes, so no sort is needed.
    codes, uniq = pd.factorize(span_pnr)
    span_person = codes.astype(np.int64, copy=False)
    uniq = np.asarray(uniq, dtype=np.int64)
    n = len(uniq)
    records = np.bincount(span_person, weights=nrec, minlength=n).astype(np.int64)
    _, first_line, birth = _first_per_person(span_person, n, span_line, span_birth)
    from_pnr = np.ones(n, dtype=bool)
    status = np.full(n, -1, dtype=np.int64)
    has_001 = np.zeros(n, dtype=bool)
    p_span, p_birth, p_status, p_line = _concat(sc.p001, 4, np.int64)
    _one_001_per_person(sc, span_person[p_span], p_line, uniq)
    if len(p_span):
        who, b, st = _first_per_person(span_person[p_span], n, p_birth, p_status)
        has_001[who] = True
        status[who] = st
        good = b > 0
        birth[who[good]] = b[good]
        from_pnr[who[good]] = False
    municipality = np.full(n, -1, dtype=np.int64)
    k_span, k_kom = _concat(sc.p002, 2, np.int64)
    if len(k_span):
        who, kom = _first_per_person(span_person[k_span], n, k_kom)
        municipality[who] = kom

    persons = pd.DataFrame({
        "pnr": uniq,
        "birth_date": birth.astype(np.int64),
        "birth_from_pnr": from_pnr,
        "status": status,
        "municipality": municipality,
        "has_001": has_001,
        "records": records,
        "first_line": first_line,
    }, copy=False)
    e_span, e_code, e_mark = events.result()
    events = pd.DataFrame({
        "person": span_person[e_span],
        "code": e_code,
        "derived": e_mark,
    })

    if sc.mixed_endings:
        first_kind = "CRLF" if sc.line_ending == b"\r\n" else "LF"
        other = "LF" if first_kind == "CRLF" else "CRLF"
        sc.violation(
            "consistent line endings",
            RecordFormatError(
                f"ends in {other}, but line 1 in {first_kind}; {sc.mixed_endings} line(s) "
                "end differently from the first line",
                line=sc.first_mixed_ending,
            ),
        )
    return ExtractIndex(
        path=path,
        size=size,
        lines=sc.lines,
        line_ending=sc.line_ending or b"\n",
        ends_with_terminator=sc.last_terminator != b"",
        start=sc.start,
        end=sc.end,
        start_lines=sc.start_lines,
        end_lines=sc.end_lines,
        record_counts={f"{c:03d}": int(v) for c, v in enumerate(sc.counts) if v},
        span_offset=off,
        span_nbytes=nbytes,
        span_records=nrec.astype(np.int64),
        span_person=span_person,
        persons=persons,
        events=events,
        violations=sc.violations,
    )


def _unpack(values: np.ndarray, width: int) -> pd.Categorical:
    """Fields read by :func:`raw` as stripped text, decoding each distinct value once."""
    codes, uniq = pd.factorize(values)
    text = [int(u).to_bytes(width, "little").decode(ENCODING).strip() for u in uniq]
    categories = sorted(set(text))
    remap = np.array([categories.index(t) for t in text], dtype=np.int64)
    return pd.Categorical.from_codes(remap[codes] if len(codes) else codes, categories)

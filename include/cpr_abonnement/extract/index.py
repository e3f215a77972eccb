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

import datetime as dt
import hashlib
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from cpr_abonnement.errors import ExtractError, RecordFormatError, UnknownRecordType
from cpr_abonnement.extract.bytefields import Lines, all_digits, number, raw
from cpr_abonnement.extract.dates import birth_from_pnr, real_dates
from cpr_abonnement.extract.layouts import (
    ENCODING,
    LAYOUTS,
    PERSON_TYPES,
    numeric,
)
from cpr_abonnement.extract.model import (
    MAX_EXAMPLES,
    EndRecord,
    ExtractIndex,
    RuleViolations,
    StartRecord,
)

#: Bytes read per block: the fastest of 4-32 MiB on the 2-core benchmark machine
#: (smaller blocks pay more per-call overhead, larger ones more cache misses).
CHUNK_SIZE = 16 * 1024 * 1024
#: Indexing threads at most; beyond a few, reading the file is the limit.
MAX_WORKERS = 4
#: Bytes a block's buffer extends past its data, for fixed-width columns of the last line.
_PAD = 64
#: A line with more bytes than this before its LF means the file is not line-based.
MAX_LINE = 64 * 1024
#: A record may be this much longer than its documented length before it is implausible
#: (known longer variants: 001 with 121 and 002 with 382 characters, ``cpr-format.md`` §1.6).
LENGTH_SLACK = 128
#: Shortest plausible line per record type: up to the last field the pipeline reads.
MIN_LENGTH = {code: LAYOUTS[code].length for code in ("000", "999")}
MIN_PERSON_LENGTH = LAYOUTS["001"]["PNR"].end

#: Code standing for "not a known record type" in per-line type arrays.
_UNKNOWN = 1000
_PERSON = np.zeros(_UNKNOWN + 1, dtype=bool)
_PERSON[[int(c) for c in PERSON_TYPES]] = True
#: The record types the person summary reads fields of.
_SUMMARY = np.zeros(_UNKNOWN + 1, dtype=bool)
_SUMMARY[[1, 2, 99]] = True
_MIN_LEN = np.zeros(_UNKNOWN + 1, dtype=np.int64)
_MIN_LEN[_PERSON] = MIN_PERSON_LENGTH
_MAX_LEN = np.full(_UNKNOWN + 1, np.iinfo(np.int64).max, dtype=np.int64)
for _code, _lay in LAYOUTS.items():
    _MAX_LEN[int(_code)] = _lay.length + LENGTH_SLACK

# Record type lookup. The low nibbles of the three type bytes index two tables: the
# type's code, and the exact bytes that code is written as. A line's type is known
# when its bytes equal the table's, which also proves they are digits: two lookups
# and one comparison per line instead of parsing three digits.
_NIBBLES = 0x0F0F0F
_TYPE_CODE = np.full(_NIBBLES + 1, _UNKNOWN, dtype=np.int16)
_TYPE_BYTES = np.zeros(_NIBBLES + 1, dtype=np.uint64)
for _code in LAYOUTS:
    _bytes = int.from_bytes(_code.encode("ascii"), "little")
    _TYPE_CODE[_bytes & _NIBBLES], _TYPE_BYTES[_bytes & _NIBBLES] = int(_code), _bytes
# Unused entries hold 0, which only all-NUL bytes could equal; those index entry 0,
# which "000" occupies.
assert _TYPE_BYTES[0] != 0


# Every field the index reads, taken from the layout tables (never sliced by hand).
_TYPE = LAYOUTS["001"]["RECORDTYPE"]
_PNR = LAYOUTS["001"]["PNR"]
_STATUS, _FOED_DT = LAYOUTS["001"]["STATUS"], LAYOUTS["001"]["FOED_DT"]
_KOMKOD = LAYOUTS["002"]["KOMKOD"]
_HAENDELSE, _AFLEDTMRK = LAYOUTS["099"]["HAENDELSE"], LAYOUTS["099"]["AFLEDTMRK"]
_HEAD = 16  # columns 1-16 read as two 8-byte words; type and PNR lie within them
assert _PNR.end <= _HEAD and _TYPE.start == 1


def _words_for(first, last) -> int:
    """Words to read from ``first``'s column to cover ``last`` too."""
    return -(-(last.end - first.start + 1) // 8)


def _head_mask(field, word: int) -> np.uint64:
    """Bytes of ``field`` that fall in word ``word`` of the head."""
    cols = range(field.start - 1, field.end)
    return np.uint64(sum(0xFF << (8 * (c % 8)) for c in cols if c // 8 == word))


_TYPE_MASK = _head_mask(_TYPE, 0)
_PNR_MASK_0, _PNR_MASK_1 = _head_mask(_PNR, 0), _head_mask(_PNR, 1)


def _pnr_digits(head: np.ndarray, lengths: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Whether columns 4-13 of the ``rows`` lines are ten ASCII digits."""
    return (all_digits(head[rows, 0], _PNR_MASK_0) & all_digits(head[rows, 1], _PNR_MASK_1)
            & (lengths[rows] >= _PNR.end))


def _at(field, column: int) -> int:
    """Byte offset of ``field`` in words read from ``column`` on."""
    return field.start - column


def _foed_dt(words: np.ndarray, at: int) -> np.ndarray:
    """FOED_DT ``YYYY-MM-DD`` at byte ``at`` of rows of words to ``YYYYMMDD``, 0 where
    blank or not a real date."""
    y, oky = number(words, at, 4)
    m, okm = number(words, at + 5, 2)
    d, okd = number(words, at + 8, 2)
    sep = (raw(words, at + 4, 1) == ord("-")) & (raw(words, at + 7, 1) == ord("-"))
    ok = oky & okm & okd & sep & real_dates(y, m, d)
    return np.where(ok, y * 10_000 + m * 100 + d, 0)


def _parse_d8(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date() if numeric(text) else None
    except ValueError:
        return None


@dataclass(slots=True)
class _Block:
    """What one block of complete lines yields, in the block's own coordinates.

    Line indexes, byte offsets and span numbers count from 0 within the block, so
    blocks can be indexed concurrently and in any order; :class:`_Merger` shifts them
    into file coordinates, in file order.
    """

    lines: int
    terminated: int
    crlf: int
    #: Whether the block's first line ends in CRLF (None: it has no terminator).
    first_crlf: bool | None
    #: Index of the block's first line ending in LF alone / in CRLF (None: there is none).
    first_lf_line: int | None
    first_crlf_line: int | None
    last_terminator: bytes
    counts: np.ndarray
    #: 000 and 999 records: type, line, line index, offset, terminator.
    frames: list[tuple[int, bytes, int, int, bytes]]
    #: rule -> exact count, and the first few errors still waiting for a line number.
    problems: dict[str, tuple[int, list[tuple[int, Callable[..., ExtractError]]]]]
    #: offset, nbytes, records, PNR, line index of its first line and birth date by
    #: the century rule, per span (the rule runs here, in parallel, not per person later).
    spans: tuple[np.ndarray, ...]
    #: Per 001 / 002 / 099 record: its span, then the fields filtering needs (for 001
    #: also its line index, to name the lines of a person delivered twice).
    p001: tuple[np.ndarray, ...]
    p002: tuple[np.ndarray, ...]
    p099: tuple[np.ndarray, ...]
    #: Index of the first line over :data:`MAX_LINE` bytes, if any.
    too_long: int | None = None


def _index_block(buf: np.ndarray, length: int, final_unterminated: bool) -> _Block:
    """Index the complete lines in ``buf[:length]`` (pure: reads ``buf`` only).

    With ``final_unterminated`` the data ends in a line without terminator (the last
    line of a file). ``buf`` must extend past ``length`` so that fixed-width columns
    can be taken at any line start. Every whole-array operation here runs once per
    line of the file, so the per-line work is kept to a few dozen passes; the rest
    runs per person or per selected record.
    """
    ends, suspects = _line_ends(buf[:length])
    if final_unterminated:
        ends = np.append(ends, length)
    n = len(ends)
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    # An empty line's "byte before the LF" is the previous LF, never a CR; only the
    # block's first line (nothing before it) and an unterminated last line need care.
    has_cr = buf[ends - 1] == 13
    has_cr[0] &= bool(ends[0] > 0)
    if final_unterminated:
        has_cr[-1] = False
    lengths = ends - starts - has_cr
    too_long = None
    if lengths.max() >= MAX_LINE:  # rare; exactly: the bytes before the LF, a CR included
        over = np.flatnonzero(ends - starts > MAX_LINE)
        too_long = int(over[0]) if len(over) else None
    lines = Lines(buf, starts, lengths)

    # Columns 1-16 of every line as two little-endian words: record type and PNR are
    # looked up and compared eight bytes at a time, not byte by byte.
    head = lines.words(1, _HEAD // 8)
    type_bytes = head[:, 0] & _TYPE_MASK
    nibbles = type_bytes & np.uint64(_NIBBLES)
    rtype = np.where(_TYPE_BYTES[nibbles] == type_bytes, _TYPE_CODE[nibbles], _UNKNOWN)
    counts = np.bincount(rtype, minlength=_UNKNOWN + 1)
    person = _PERSON[rtype]

    # Runs: consecutive person lines with the same PNR bytes. PNR digits are checked
    # on each run's first line only (the others equal it byte for byte); a run whose
    # PNR is digits is a span of that person's records.
    p0, p1 = head[:, 0] & _PNR_MASK_0, head[:, 1] & _PNR_MASK_1
    new = person.copy()
    new[1:] &= ~(person[:-1] & (p0[1:] == p0[:-1]) & (p1[1:] == p1[:-1]))
    runs = np.flatnonzero(new)
    run_ok = _pnr_digits(head, lengths, runs)
    run_of_line = np.cumsum(new) - 1
    run_end = np.append(runs[1:], n) - 1
    # A run also ends where a non-person line interrupts it (most blocks have none).
    others = n - int(counts[_PERSON].sum())
    breaks = np.flatnonzero(~person) if others else np.empty(0, dtype=np.int64)
    nxt = np.searchsorted(breaks, runs)
    cut = nxt < len(breaks)
    run_end[cut] = np.minimum(run_end[cut], breaks[nxt[cut]] - 1)
    span_of_run = np.cumsum(run_ok) - 1
    first, last = runs[run_ok], run_end[run_ok]
    pnr, _ = number(head[first], _at(_PNR, 1), _PNR.width)

    bad_length = (lengths < _MIN_LEN[rtype]) | (lengths > _MAX_LEN[rtype])
    problems = {}
    if counts[_UNKNOWN] or counts[997] or not run_ok.all() or bad_length.any():
        pnr_ok = person & np.append(run_ok, False)[run_of_line]  # [-1]: before any run
        problems = _line_problems(buf, head, starts, lengths, rtype, pnr_ok, bad_length)
    if suspects != n - int(final_unterminated) + int(has_cr.sum()):  # rare: see _line_ends
        controls = _control_bytes(buf[:length], starts, ends, has_cr, rtype)
        if controls[0]:
            problems["no control characters"] = controls
    frames = []
    if counts[0] or counts[999]:
        for i in np.flatnonzero((rtype == 0) | (rtype == 999)).tolist():
            s, e = int(starts[i]), int(starts[i] + lengths[i])
            frames.append((int(rtype[i]), bytes(buf[s:e]), i, s,
                           bytes(buf[e : min(int(ends[i]) + 1, length)])))

    # Lines of the record types filtering reads, in spans; then split by type.
    summary_rows = np.flatnonzero(_SUMMARY[rtype])
    summary_rows = summary_rows[run_ok[run_of_line[summary_rows]]]
    summary_types = rtype[summary_rows]

    def records(code: str) -> tuple[np.ndarray, np.ndarray]:
        """Lines of type ``code`` in spans, and their span numbers."""
        rows = summary_rows[summary_types == int(code)]
        return rows, span_of_run[run_of_line[rows]]

    rows, span = records("001")
    words = lines.words(_STATUS.start, _words_for(_STATUS, _FOED_DT), rows)
    status, status_ok = number(words, 0, _STATUS.width)
    p001 = (span, _foed_dt(words, _at(_FOED_DT, _STATUS.start)), np.where(status_ok, status, -1),
            rows)
    rows, span = records("002")
    kom, kom_ok = number(lines.words(_KOMKOD.start, 1, rows), 0, _KOMKOD.width)
    p002 = (span, np.where(kom_ok, kom, -1))
    rows, span = records("099")
    words = lines.words(_HAENDELSE.start, _words_for(_HAENDELSE, _AFLEDTMRK), rows)
    p099 = (span, raw(words, 0, _HAENDELSE.width),
            raw(words, _at(_AFLEDTMRK, _HAENDELSE.start), _AFLEDTMRK.width))

    span_end = np.minimum(ends[last] + 1, length)
    terminated = n - int(final_unterminated)
    crlf = int(has_cr.sum())
    return _Block(
        lines=n,
        terminated=terminated,
        crlf=crlf,
        first_crlf=None if final_unterminated and n == 1 else bool(has_cr[0]),
        first_lf_line=_first(~has_cr[:terminated]) if crlf < terminated else None,
        first_crlf_line=_first(has_cr) if crlf else None,
        last_terminator=bytes(buf[starts[-1] + lengths[-1] : min(int(ends[-1]) + 1, length)]),
        counts=counts[:_UNKNOWN],
        frames=frames,
        problems=problems,
        spans=(starts[first], span_end - starts[first], last - first + 1, pnr, first,
               birth_from_pnr(pnr)),
        p001=p001,
        p002=p002,
        p099=p099,
        too_long=too_long,
    )


def _first(flags: np.ndarray) -> int | None:
    """Index of the first true element, None when there is none."""
    i = int(np.argmax(flags)) if len(flags) else 0
    return i if len(flags) and flags[i] else None


#: Bytes no record may hold (``cpr-format.md`` §1.7 allows only ISO-8859-1 text): the C0
#: controls 0x00-0x1F (LF, and CR right before it, end a line and are not part of it),
#: DEL and the C1 controls 0x7F-0x9F.
CONTROL = np.zeros(256, dtype=bool)
CONTROL[:0x20] = CONTROL[0x7F:0xA0] = True


#: Bytes searched at a time for line ends and control bytes: they stay in the CPU cache.
_SCREEN = 256 * 1024


def _line_ends(data: np.ndarray) -> tuple[np.ndarray, int]:
    """Offsets of the LFs in ``data``, and how many bytes may be line ends or controls.

    The second number screens for control bytes on the same pass: ``(b + 1) & 0x7F`` is
    below 0x21 exactly for 0x00-0x1F, 0x7F-0x9F and 0xFF, so it equals the number of LF
    and terminating CR bytes when the block is clean. A mismatch (a control byte, or a
    harmless 'ÿ' = 0xFF) sends the block to :func:`_control_bytes`, which is exact.
    Both run per cache-sized slice with reused buffers, so the screen reads bytes the LF
    search has just brought into the cache: on the shared 2-core machine it adds 5 ms
    per 16 MiB block, where separate whole-block passes added 13 ms (37 ms alone) and a
    256-entry table lookup took 98 ms.
    """
    size = min(_SCREEN, len(data))
    is_lf, folded, low = (np.empty(size, dtype=bool), np.empty(size, dtype=np.uint8),
                          np.empty(size, dtype=bool))
    ends, suspects = [], 0
    for at in range(0, len(data), _SCREEN):
        part = data[at : at + _SCREEN]
        n = len(part)
        np.equal(part, 10, out=is_lf[:n])
        ends.append(np.flatnonzero(is_lf[:n]) + at)
        np.add(part, np.uint8(1), out=folded[:n])
        np.bitwise_and(folded[:n], np.uint8(0x7F), out=folded[:n])
        np.less(folded[:n], 0x21, out=low[:n])
        suspects += int(np.count_nonzero(low[:n]))
    return (np.concatenate(ends) if ends else np.empty(0, dtype=np.int64)), suspects


def _control_bytes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   has_cr: np.ndarray, rtype: np.ndarray):
    """Every control byte in the block's lines: exact count and the first few as errors
    (line index, 1-based column, the byte in hex). Rare: slow path."""
    where = np.flatnonzero(CONTROL[data])
    terminators = np.concatenate([ends[ends < len(data)], ends[has_cr] - 1])
    where = where[~np.isin(where, terminators)]
    rows = np.searchsorted(starts, where, side="right") - 1
    pending = []
    for pos, i in zip(where[:MAX_EXAMPLES].tolist(), rows[:MAX_EXAMPLES].tolist(),
                      strict=True):
        column = pos - int(starts[i]) + 1
        code = f"{rtype[i]:03d}" if rtype[i] != _UNKNOWN else None
        pending.append((i, partial(
            RecordFormatError, f"control character 0x{int(data[pos]):02X} at column "
            f"{column}; records hold ISO-8859-1 text only", record_type=code)))
    return len(where), pending


def _line_problems(buf, head, starts, lengths, rtype, pnr_ok, bad_length):
    """Unknown types, bad PNRs and implausible lengths (rare: slow path).

    Each rule keeps its exact count and builds errors for its first few lines only;
    the errors get their line numbers when the block is merged.
    """
    unknown = rtype == _UNKNOWN
    # 997 records carry a PNR too, outside any person's span.
    is997 = rtype == 997
    pnr_ok[is997] = _pnr_digits(head, lengths, is997)
    bad_pnr = (_PERSON[rtype] | is997) & ~pnr_ok

    def raw(i: int) -> bytes:
        return bytes(buf[starts[i] : starts[i] + lengths[i]])

    def unknown_type(i: int) -> Callable[..., ExtractError]:
        line = raw(i)
        return partial(UnknownRecordType, "empty line" if not line.strip()
                       else f"unknown record type {line[:3].decode(ENCODING)!r}")

    def bad_pnr_error(i: int) -> Callable[..., ExtractError]:
        return partial(RecordFormatError, "columns 4-13 must be a 10-digit PNR",
                       record_type=f"{rtype[i]:03d}", field="PNR")

    def bad_length_error(i: int) -> Callable[..., ExtractError]:
        code = f"{rtype[i]:03d}"
        return partial(
            RecordFormatError,
            f"{lengths[i]} characters; a {code} record has {LAYOUTS[code].length}"
            f" (shorter lines are space-padded, at most {LENGTH_SLACK} extra allowed)",
            record_type=code, pnr=raw(i)[3:13].decode(ENCODING) if pnr_ok[i] else None)

    found = {}
    for rule, mask, error in (("known record type", unknown, unknown_type),
                              ("10-digit PNR", bad_pnr, bad_pnr_error),
                              ("record length", bad_length, bad_length_error)):
        rows = np.flatnonzero(mask)
        if len(rows):
            found[rule] = (len(rows), [(i, error(i)) for i in rows[:MAX_EXAMPLES].tolist()])
    return found


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

    def add(self, block: _Block, offset: int) -> None:
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
                    _parse_d8(prod), _parse_d8(prev), prod, prev,
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
    # +_PAD: room to read fixed-width columns past the last line of a block.
    free = []
    for _ in range(workers + 1):
        raw = bytearray(chunk_size + MAX_LINE + _PAD)
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
                    pending.append((pool.submit(_index_block, arr, total, True), base,
                                    (raw, arr)))
                break
            cut = raw.rfind(b"\n", 0, total) + 1
            if cut:
                pending.append((pool.submit(_index_block, arr, cut, False), base, (raw, arr)))
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
    return span, _unpack(code, _HAENDELSE.width), _unpack(mark, _AFLEDTMRK.width)


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

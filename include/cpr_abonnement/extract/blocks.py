"""Indexing one block of complete lines: the per-line work of the scan, as a pure function.

:func:`index_block` reads only the bytes it is given and returns a :class:`Block` in the
block's own coordinates (line numbers, offsets and span numbers counted from 0), so the
scanner (:mod:`cpr_abonnement.extract.index`) can run blocks on several threads and
shift the results into file order afterwards. Every field is located through the layout
tables; record types are recognised by table lookup, numbers read with
:mod:`cpr_abonnement.extract.bytefields`. Problems wait in the block with their line
numbers until the merge knows where the block lies in the file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

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
)

#: Bytes read per block: the fastest of 4-32 MiB on the 2-core benchmark machine
#: (smaller blocks pay more per-call overhead, larger ones more cache misses).
CHUNK_SIZE = 16 * 1024 * 1024
#: Indexing threads at most; beyond a few, reading the file is the limit.
MAX_WORKERS = 4
#: Bytes a block's buffer extends past its data, for fixed-width columns of the last line.
PAD = 64
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
# which "000" occupies. (Checked at import, also under ``python -O``.)
if _TYPE_BYTES[0] == 0:
    raise ImportError("record type table: entry 0 must be taken by record type 000")


# Every field the index reads, taken from the layout tables (never sliced by hand).
_TYPE = LAYOUTS["001"]["RECORDTYPE"]
_PNR = LAYOUTS["001"]["PNR"]
_STATUS, _FOED_DT = LAYOUTS["001"]["STATUS"], LAYOUTS["001"]["FOED_DT"]
_KOMKOD = LAYOUTS["002"]["KOMKOD"]
HAENDELSE, AFLEDTMRK = LAYOUTS["099"]["HAENDELSE"], LAYOUTS["099"]["AFLEDTMRK"]
_HEAD = 16  # columns 1-16 read as two 8-byte words; type and PNR lie within them
if not (_PNR.end <= _HEAD and _TYPE.start == 1):
    raise ImportError("the layouts moved record type or PNR out of columns 1-16")


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


def parse_d8(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date() if numeric(text) else None
    except ValueError:
        return None


@dataclass(slots=True)
class Block:
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


def index_block(buf: np.ndarray, length: int, final_unterminated: bool) -> Block:
    """Index the complete lines in ``buf[:length]`` (pure: reads ``buf`` only).

    With ``final_unterminated`` the data ends in a line without terminator (the last
    line of a file). ``buf`` must extend past ``length`` so that fixed-width columns
    can be taken at any line start. Every whole-array operation here runs once per
    line of the file, so the per-line work is kept to a few dozen passes; the rest
    runs per person or per selected record.
    """
    ends, suspects = _line_ends(buf[:length])
    # The screen counts CRs too: as many suspects as LFs means no CR in the block (an LF
    # file's every block), so no line's byte before its LF needs to be looked at.
    any_cr = suspects != len(ends)
    if final_unterminated:
        ends = np.append(ends, length)
    n = len(ends)
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    if any_cr:
        # An empty line's "byte before the LF" is the previous LF, never a CR; only the
        # block's first line (nothing before it) and an unterminated last line need care.
        has_cr = buf[ends - 1] == 13
        has_cr[0] &= bool(ends[0] > 0)
        if final_unterminated:
            has_cr[-1] = False
    else:
        has_cr = np.zeros(n, dtype=bool)
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
    words = lines.words(HAENDELSE.start, _words_for(HAENDELSE, AFLEDTMRK), rows)
    p099 = (span, raw(words, 0, HAENDELSE.width),
            raw(words, _at(AFLEDTMRK, HAENDELSE.start), AFLEDTMRK.width))

    span_end = np.minimum(ends[last] + 1, length)
    terminated = n - int(final_unterminated)
    crlf = int(has_cr.sum())
    return Block(
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

"""One streaming pass over a change extract: the index everything downstream uses.

:func:`scan` reads the file in fixed-size blocks (memory does not grow with the file)
and turns each block into NumPy arrays: line starts, record types, PNRs. From those it
keeps, per person, what filtering needs (birth date, status, current municipality,
event codes) and *where the person's records are*: a list of byte spans, so a writer
can later copy records byte for byte without parsing them again. Records are grouped
by the PNR in columns 4-13, never by adjacency, because some files put all 003 records
at the end (``cpr-format.md`` §1.1).

Memory is proportional to the number of persons and spans (a span is a run of
consecutive lines of one person, so normally one or two per person), not to the
number of bytes or records. Structural problems found on the way (unknown record
types, bad PNRs, implausible lengths) are collected with their line numbers so
:mod:`cpr_abonnement.extract.validation` can report every broken rule at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from cpr_abonnement.errors import ExtractError, RecordFormatError, UnknownRecordType
from cpr_abonnement.extract.layouts import ENCODING, LAYOUTS, PERSON_TYPES, PLATFORM_TYPES
from cpr_abonnement.pnr import CENTURY

#: Bytes read per block. 64 MiB keeps NumPy's temporaries well under 1 GB.
CHUNK_SIZE = 64 * 1024 * 1024
#: A line longer than this without a terminator means the file is not line-based.
MAX_LINE = 64 * 1024
#: A record may be this much longer than its documented length before it is implausible
#: (known longer variants: 001 with 121 and 002 with 382 characters, ``cpr-format.md`` §1.6).
LENGTH_SLACK = 128
#: How many example lines a rule keeps; the count is always exact.
MAX_EXAMPLES = 10
#: Shortest plausible line per record type: up to the last field the pipeline reads.
MIN_LENGTH = {code: LAYOUTS[code].length for code in ("000", "999")}
MIN_PERSON_LENGTH = LAYOUTS["001"]["PNR"].end

_KNOWN = np.zeros(1000, dtype=bool)
_KNOWN[[int(c) for c in LAYOUTS]] = True
_PERSON = np.zeros(1000, dtype=bool)
_PERSON[[int(c) for c in PERSON_TYPES]] = True
_MAX_LEN = np.zeros(1000, dtype=np.int64)
for _code, _lay in LAYOUTS.items():
    _MAX_LEN[int(_code)] = _lay.length + LENGTH_SLACK
_CENTURY = np.array([CENTURY[d] for d in range(10)], dtype=np.int64)  # [digit7, yy band]
_POW10 = {w: 10 ** np.arange(w - 1, -1, -1, dtype=np.int64) for w in (2, 3, 4, 10)}


@dataclass(frozen=True, slots=True)
class StartRecord:
    """Record 000: task number and the production-date chain."""

    line_no: int
    raw: bytes
    terminator: bytes
    task_number: str
    production_date: dt.date | None
    previous_date: dt.date | None
    production_text: str
    previous_text: str


@dataclass(frozen=True, slots=True)
class EndRecord:
    """Record 999 and the counter it carries."""

    line_no: int
    offset: int
    raw: bytes
    terminator: bytes
    counter: int | None


@dataclass
class RuleViolations:
    """Every line breaking one rule: an exact count and the first few as errors."""

    rule: str
    count: int = 0
    examples: list[ExtractError] = field(default_factory=list)

    def add(self, error: ExtractError) -> None:
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(error)


@dataclass
class ExtractIndex:
    """What one pass over an extract learned; the file itself stays on disk."""

    path: Path
    size: int
    lines: int
    line_ending: bytes
    ends_with_terminator: bool
    start: StartRecord | None
    end: EndRecord | None
    #: Lines of type 000 / 999 seen anywhere (a valid file has exactly one each).
    start_lines: list[int]
    end_lines: list[int]
    #: Records per type code, over the whole file.
    record_counts: dict[str, int]
    #: Byte spans of person records in file order: offset, nbytes (terminators
    #: included), records, and the person (row of ``persons``) they belong to.
    span_offset: np.ndarray
    span_nbytes: np.ndarray
    span_records: np.ndarray
    span_person: np.ndarray
    #: One row per person, sorted by PNR. Columns: ``pnr`` (int64), ``birth_date``
    #: (int ``YYYYMMDD``, 0 when neither 001 nor the PNR gives a real date),
    #: ``birth_from_pnr`` (bool), ``status`` (-1 when unknown),
    #: ``municipality`` (-1 without a 002), ``has_001``, ``records``, ``first_line``.
    persons: pd.DataFrame
    #: One row per 099 record: ``person``, ``code``, ``derived`` (AFLEDTMRK, '' if blank).
    events: pd.DataFrame
    #: Structural rule violations found while scanning, by rule name.
    violations: dict[str, RuleViolations]
    sha256: str | None = None

    @cached_property
    def person_spans(self) -> tuple[np.ndarray, np.ndarray]:
        """Spans grouped by person: ``(order, starts)`` so that person ``p``'s spans are
        ``order[starts[p]:starts[p + 1]]`` (each group in file order)."""
        order = np.argsort(self.span_person, kind="stable")
        starts = np.searchsorted(self.span_person[order], np.arange(len(self.persons) + 1))
        return order, starts

    @property
    def person_records(self) -> int:
        return int(self.span_records.sum())

    @property
    def platform_records(self) -> dict[str, int]:
        return {c: self.record_counts.get(c, 0) for c in sorted(PLATFORM_TYPES)}

    def pnr_text(self, rows: np.ndarray | None = None) -> pd.Series:
        """PNRs as 10-character strings (only for display after masking, or for joins)."""
        pnrs = self.persons["pnr"] if rows is None else self.persons["pnr"].iloc[rows]
        return pnrs.astype(str).str.zfill(10)


def _digits(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value of each row of ASCII digits, and whether the row was all digits."""
    d = block - np.uint8(48)  # wraps below '0', so one comparison checks both ends
    ok = (d <= 9).all(axis=1)
    return d.astype(np.int64) @ _POW10[block.shape[1]], ok


class _Lines:
    """Complete lines of one block, with fixed-width column access.

    Columns are gathered through a strided view (one row per byte offset), so taking
    ``width`` bytes at each line start copies just those bytes; lines shorter than the
    columns asked for read as spaces, as the format says.
    """

    def __init__(self, buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> None:
        self.buf, self.starts, self.lengths = buf, starts, lengths

    def columns(self, first: int, width: int, rows: np.ndarray | None = None) -> np.ndarray:
        starts = self.starts if rows is None else self.starts[rows]
        lengths = self.lengths if rows is None else self.lengths[rows]
        view = np.lib.stride_tricks.as_strided(
            self.buf, shape=(len(self.buf) - width + 1, width), strides=(1, 1), writeable=False
        )
        out = view[starts + (first - 1)]
        for i in np.flatnonzero(lengths < first - 1 + width).tolist():
            # rare: trailing spaces stripped by whoever wrote the file
            out[i, max(0, int(lengths[i]) - (first - 1)):] = 32
        return out


# Every field the index reads, taken from the layout tables (never sliced by hand).
_TYPE = LAYOUTS["001"]["RECORDTYPE"]
_PNR = LAYOUTS["001"]["PNR"]
_STATUS, _FOED_DT = LAYOUTS["001"]["STATUS"], LAYOUTS["001"]["FOED_DT"]
_KOMKOD = LAYOUTS["002"]["KOMKOD"]
_HAENDELSE, _AFLEDTMRK = LAYOUTS["099"]["HAENDELSE"], LAYOUTS["099"]["AFLEDTMRK"]
_HEAD = 16  # columns 1-16 read as two 8-byte words; type and PNR lie within them
assert _PNR.end <= _HEAD and _TYPE.start == 1


def _word_mask(field, word: int) -> np.uint64:
    """Bytes of ``field`` that fall in little-endian word ``word`` of the head."""
    bits = 0
    for col in range(field.start - 1, field.end):
        if col // 8 == word:
            bits |= 0xFF << (8 * (col % 8))
    return np.uint64(bits)


_TYPE_MASK = _word_mask(_TYPE, 0)
_PNR_MASK_0, _PNR_MASK_1 = _word_mask(_PNR, 0), _word_mask(_PNR, 1)
_ZEROS = np.uint64(0x3030_3030_3030_3030)
_HIGH = np.uint64(0xF0F0_F0F0_F0F0_F0F0)
_SIX = np.uint64(0x0606_0606_0606_0606)


def _within(field, first) -> slice:
    """Where ``field`` sits in a block of columns read from ``first.start`` on."""
    return slice(field.start - first.start, field.end - first.start + 1)


def _all_digits(words: np.ndarray, mask: np.uint64) -> np.ndarray:
    """Whether every byte selected by ``mask`` is an ASCII digit, eight bytes at a time.

    A byte is a digit when its high nibble is 3 and stays 3 after adding 6; bytes
    outside the mask are replaced by '0' first. A carry out of a non-digit byte can
    only disturb a row that already fails.
    """
    x = (words & mask) | (_ZEROS & ~mask)
    return ((x & _HIGH) == _ZEROS) & (((x + _SIX) & _HIGH) == _ZEROS)


def _real_dates(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    dim = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(m, 0, 12)]
    dim = dim + ((m == 2) & leap)
    return (m >= 1) & (m <= 12) & (d >= 1) & (d <= dim) & (y >= 1)


def birth_from_pnr(pnr: np.ndarray) -> np.ndarray:
    """Vectorised century rule (``cpr-format.md`` §4.2): ``YYYYMMDD`` or 0 if no date."""
    day, month = pnr // 100_000_000, pnr // 1_000_000 % 100
    yy, digit7 = pnr // 10_000 % 100, pnr // 1_000 % 10
    band = np.where(yy <= 36, 0, np.where(yy <= 57, 1, 2))
    year = _CENTURY[digit7, band] + yy
    return np.where(_real_dates(year, month, day), year * 10_000 + month * 100 + day, 0)


def _foed_dt(block: np.ndarray) -> np.ndarray:
    """FOED_DT ``YYYY-MM-DD`` blocks to ``YYYYMMDD``, 0 where blank or not a real date."""
    y, oky = _digits(block[:, 0:4])
    m, okm = _digits(block[:, 5:7])
    d, okd = _digits(block[:, 8:10])
    sep = (block[:, 4] == ord("-")) & (block[:, 7] == ord("-"))
    ok = oky & okm & okd & sep & _real_dates(y, m, d)
    return np.where(ok, y * 10_000 + m * 100 + d, 0)


def _parse_d8(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date() if text.isdigit() else None
    except ValueError:
        return None


class _Scanner:
    """Accumulates one block of complete lines at a time."""

    def __init__(self) -> None:
        self.lines = 0
        self.line_ending: bytes | None = None
        self.mixed = 0
        self.start: StartRecord | None = None
        self.end: EndRecord | None = None
        self.start_lines: list[int] = []
        self.end_lines: list[int] = []
        self.counts = np.zeros(1000, dtype=np.int64)
        self.unknown_count = 0
        self.spans: list[tuple[np.ndarray, ...]] = []
        self.span_count = 0
        self.p001: list[tuple[np.ndarray, ...]] = []
        self.p002: list[tuple[np.ndarray, ...]] = []
        self.p099: list[tuple[np.ndarray, ...]] = []
        self.violations: dict[str, RuleViolations] = {}
        self.last_terminator = b""

    def violation(self, rule: str, error: ExtractError) -> None:
        self.violations.setdefault(rule, RuleViolations(rule)).add(error)

    def block(self, buf: np.ndarray, base: int, ends: np.ndarray,
              final_unterminated: bool) -> None:
        """Process complete lines of ``buf``; ``ends`` are their ``\\n`` positions.

        With ``final_unterminated`` the last entry of ``ends`` is the end of the data (a
        file whose last line has no terminator). ``buf`` extends past the data so that
        fixed-width columns can be taken at any line start.
        """
        n = len(ends)
        starts = np.empty(n, dtype=np.int64)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        term_len = np.ones(n, dtype=np.int64)
        if final_unterminated:
            term_len[-1] = 0
        has_cr = (buf[ends - 1] == 13) & (ends > starts) & (term_len == 1)
        lengths = ends - starts - has_cr
        term_len += has_cr
        lines = _Lines(buf, starts, lengths)

        if self.line_ending is None and term_len[0]:
            self.line_ending = b"\r\n" if has_cr[0] else b"\n"
        if self.line_ending is not None:
            want_cr = self.line_ending == b"\r\n"
            self.mixed += int(((has_cr != want_cr) & (term_len > 0)).sum())

        # Columns 1-16 of every line as two little-endian words: record type and PNR
        # are tested and compared eight bytes at a time (SWAR), not byte by byte.
        head = lines.columns(1, _HEAD)
        w0, w1 = head.view("<u8")[:, 0], head.view("<u8")[:, 1]
        type_ok = _all_digits(w0, _TYPE_MASK) & (lengths >= _TYPE.end)
        rtype = ((head[:, 0].astype(np.int16) - 48) * 100 + (head[:, 1].astype(np.int16) - 48)
                 * 10 + (head[:, 2].astype(np.int16) - 48))
        rtype[~type_ok] = 0
        known = type_ok & _KNOWN[rtype]
        pnr_ok = (_all_digits(w0, _PNR_MASK_0) & _all_digits(w1, _PNR_MASK_1)
                  & (lengths >= _PNR.end))
        self.counts += np.bincount(rtype[known], minlength=1000)
        person = known & _PERSON[rtype]
        ok = person & pnr_ok
        unknown = ~known
        bad_pnr = (person | (known & (rtype == 997))) & ~pnr_ok
        bad_length = (person & (lengths < MIN_PERSON_LENGTH)) | (
            known & (lengths > _MAX_LEN[rtype]))
        if unknown.any() or bad_pnr.any() or bad_length.any():
            self._line_problems(buf, starts, lengths, rtype, pnr_ok, unknown, bad_pnr,
                                bad_length)

        frame = np.flatnonzero(known & ((rtype == 0) | (rtype == 999)))
        for i in frame.tolist():
            line = bytes(buf[starts[i] : starts[i] + lengths[i]])
            term = bytes(buf[starts[i] + lengths[i] : starts[i] + lengths[i] + term_len[i]])
            self._frame_record(int(rtype[i]), line, self.lines + 1 + i, base + int(starts[i]),
                               term)

        # Person spans: runs of consecutive lines of one person. Only the first line of
        # each run needs its PNR as a number; the rest compare bytes with the line before.
        continues = np.zeros(n, dtype=bool)
        p0, p1 = w0 & _PNR_MASK_0, w1 & _PNR_MASK_1
        continues[1:] = ok[:-1] & (p0[1:] == p0[:-1]) & (p1[1:] == p1[:-1])
        new = ok & ~continues
        first = np.flatnonzero(new)
        span_of_line = np.cumsum(new) - 1 + self.span_count
        last = np.empty_like(first)
        if len(first):
            last[:-1] = first[1:] - 1
            last[-1] = n - 1
            # A run also ends where a non-person line interrupts it.
            breaks = np.flatnonzero(~ok)
            nxt = np.searchsorted(breaks, first)
            cut = nxt < len(breaks)
            last[cut] = np.minimum(last[cut], breaks[nxt[cut]] - 1)
        span_end = starts[last] + lengths[last] + term_len[last]
        pnr, _ = _digits(head[first, _PNR.slice])
        self.spans.append((base + starts[first], span_end - starts[first], last - first + 1,
                           pnr, self.lines + 1 + first))
        self.span_count += len(first)

        sel = np.flatnonzero(ok & (rtype == 1))
        if len(sel):
            cols = lines.columns(_STATUS.start, _FOED_DT.end - _STATUS.start + 1, sel)
            status, status_ok = _digits(cols[:, _within(_STATUS, _STATUS)])
            self.p001.append((span_of_line[sel], _foed_dt(cols[:, _within(_FOED_DT, _STATUS)]),
                              np.where(status_ok, status, -1)))
        sel = np.flatnonzero(ok & (rtype == 2))
        if len(sel):
            kom, kom_ok = _digits(lines.columns(_KOMKOD.start, _KOMKOD.width, sel))
            self.p002.append((span_of_line[sel], np.where(kom_ok, kom, -1)))
        sel = np.flatnonzero(ok & (rtype == 99))
        if len(sel):
            cols = lines.columns(_HAENDELSE.start, _AFLEDTMRK.end - _HAENDELSE.start + 1, sel)
            self.p099.append((span_of_line[sel], _packed(cols[:, _within(_HAENDELSE, _HAENDELSE)]),
                              _packed(cols[:, _within(_AFLEDTMRK, _HAENDELSE)])))

        self.last_terminator = bytes(buf[starts[-1] + lengths[-1] : ends[-1] + 1][
            : term_len[-1]])
        self.lines += n

    def _line_problems(self, buf, starts, lengths, rtype, pnr_ok, unknown, bad_pnr,
                       bad_length) -> None:
        """Record unknown types, bad PNRs and implausible lengths (rare: slow path)."""
        def raw(i: int) -> bytes:
            return bytes(buf[starts[i] : starts[i] + lengths[i]])

        line_no = self.lines + 1
        for i in np.flatnonzero(unknown).tolist():
            line = raw(i)
            self.violation("known record type", UnknownRecordType(
                "empty line" if not line.strip()
                else f"unknown record type {line[:3].decode(ENCODING)!r}",
                line=line_no + i))
        for i in np.flatnonzero(bad_pnr).tolist():
            self.violation("10-digit PNR", RecordFormatError(
                "columns 4-13 must be a 10-digit PNR", line=line_no + i,
                record_type=f"{rtype[i]:03d}", field="PNR"))
        for i in np.flatnonzero(bad_length).tolist():
            code = f"{rtype[i]:03d}"
            self.violation("record length", RecordFormatError(
                f"{lengths[i]} characters; a {code} record has {LAYOUTS[code].length}"
                f" (shorter lines are space-padded, at most {LENGTH_SLACK} extra allowed)",
                line=line_no + i, record_type=code,
                pnr=raw(i)[3:13].decode(ENCODING) if pnr_ok[i] else None))

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
                line_no, offset, line, term, int(counter) if counter.isdigit() else None
            )


def _first_per_person(person: np.ndarray, *values: np.ndarray):
    """Keep the first row (file order) for each person."""
    people, first = np.unique(person, return_index=True)
    return people, *(v[first] for v in values)


def _concat(parts: list[tuple[np.ndarray, ...]], k: int, dtype) -> list[np.ndarray]:
    if not parts:
        return [np.empty(0, dtype=dtype) for _ in range(k)]
    return [np.concatenate([p[i] for p in parts]) for i in range(k)]


def scan(
    path: str | Path,
    *,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
    digest: bool = False,
) -> ExtractIndex:
    """Read ``path`` once and build its :class:`ExtractIndex`.

    ``progress(bytes_done, bytes_total)`` is called after each block. With ``digest``
    the SHA-256 of the file is computed on the way (``ExtractIndex.sha256``). The only error
    raised is for a file that is not line-based at all; every other problem is
    recorded in ``violations`` for validation to report.
    """
    path = Path(path)
    size = path.stat().st_size
    sc = _Scanner()
    # Two buffers: while a worker thread indexes one block (NumPy releases the GIL),
    # the caller's thread reads the next block into the other and finds its newlines.
    # +64: room to read fixed-width columns past the last line.
    bufs = [bytearray(chunk_size + MAX_LINE + 64) for _ in range(2)]
    arrs = [np.frombuffer(b, dtype=np.uint8) for b in bufs]
    carry, base, done, k = 0, 0, 0, 0
    hasher = hashlib.sha256() if digest else None
    pending: Future | None = None
    with open(path, "rb") as fh, ThreadPoolExecutor(max_workers=1) as worker:
        while True:
            buf, arr = bufs[k], arrs[k]
            got = fh.readinto(memoryview(buf)[carry : carry + chunk_size])
            if hasher is not None:
                hasher.update(memoryview(buf)[carry : carry + got])
            done += got
            total = carry + got
            if got == 0:
                if total:
                    worker.submit(sc.block, arr, base,
                                  np.array([total], dtype=np.int64), True).result()
                break
            nl = np.flatnonzero(arr[:total] == 10)
            if len(nl) == 0:
                if total > MAX_LINE:
                    raise RecordFormatError(
                        f"no line terminator within {MAX_LINE} bytes; a change extract has "
                        "one record per line (LF or CRLF)",
                        line=sc.lines + 1,
                    )
                carry = total
                continue
            current = worker.submit(sc.block, arr, base, nl, False)
            if pending is not None:
                pending.result()  # the other buffer is free again
            pending = current
            cut = int(nl[-1]) + 1
            base += cut
            carry = total - cut
            bufs[1 - k][0:carry] = buf[cut:total]
            k = 1 - k
            if progress:
                progress(done, size)
        if pending is not None:
            pending.result()
    index = _finish(sc, path, size)
    index.sha256 = hasher.hexdigest() if hasher is not None else None
    return index


def _finish(sc: _Scanner, path: Path, size: int) -> ExtractIndex:
    off, nbytes, nrec, span_pnr, span_line = _concat(sc.spans, 5, np.int64)
    # Persons in order of first appearance; factorize hashes, so no sort is needed.
    codes, uniq = pd.factorize(span_pnr)
    span_person = codes.astype(np.int64)
    uniq = np.asarray(uniq, dtype=np.int64)
    n = len(uniq)
    records = np.bincount(span_person, weights=nrec, minlength=n).astype(np.int64)
    first_line = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_line, span_person, span_line)

    birth = birth_from_pnr(uniq)
    from_pnr = np.ones(n, dtype=bool)
    status = np.full(n, -1, dtype=np.int64)
    has_001 = np.zeros(n, dtype=bool)
    p_span, p_birth, p_status = _concat(sc.p001, 3, np.int64)
    if len(p_span):
        who, b, st = _first_per_person(span_person[p_span], p_birth, p_status)
        has_001[who] = True
        status[who] = st
        good = b > 0
        birth[who[good]] = b[good]
        from_pnr[who[good]] = False
    municipality = np.full(n, -1, dtype=np.int64)
    k_span, k_kom = _concat(sc.p002, 2, np.int64)
    if len(k_span):
        who, kom = _first_per_person(span_person[k_span], k_kom)
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
    e_span, e_code, e_mark = _concat(sc.p099, 3, np.int64)
    events = pd.DataFrame({
        "person": span_person[e_span],
        "code": _unpack(e_code, _HAENDELSE.width),
        "derived": _unpack(e_mark, _AFLEDTMRK.width),
    })

    if sc.mixed:
        first_kind = "CRLF" if sc.line_ending == b"\r\n" else "LF"
        sc.violation(
            "consistent line endings",
            RecordFormatError(
                f"{sc.mixed} line(s) end differently from the first line "
                f"({first_kind})"
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
        span_person=span_person.astype(np.int64),
        persons=persons,
        events=events,
        violations=sc.violations,
    )


def _packed(block: np.ndarray) -> np.ndarray:
    """Fixed-width byte columns (at most 7 bytes) packed into one integer per row."""
    out = np.zeros(len(block), dtype=np.int64)
    for k in range(block.shape[1]):
        out = (out << 8) | block[:, k]
    return out


def _unpack(values: np.ndarray, width: int) -> pd.Categorical:
    """Inverse of :func:`_packed` as stripped text, decoding each distinct value once."""
    codes, uniq = pd.factorize(values)
    text = [int(u).to_bytes(width, "big").decode(ENCODING).strip() for u in uniq]
    categories = sorted(set(text))
    remap = np.array([categories.index(t) for t in text], dtype=np.int64)
    return pd.Categorical.from_codes(remap[codes] if len(codes) else codes, categories)

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
from collections.abc import Callable
from dataclasses import dataclass, field
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
MIN_LENGTH = {"000": 35, "999": 21}
MIN_PERSON_LENGTH = 13

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
    #: ``birth_from_pnr`` (bool), ``foed_dt_text``, ``status`` (-1 when unknown),
    #: ``municipality`` (-1 without a 002), ``has_001``, ``records``, ``first_line``.
    persons: pd.DataFrame
    #: One row per 099 record: ``person``, ``code``, ``derived`` (AFLEDTMRK, '' if blank).
    events: pd.DataFrame
    #: Structural rule violations found while scanning, by rule name.
    violations: dict[str, RuleViolations]
    mixed_line_endings: int = 0

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
    d = block.astype(np.int64) - 48
    ok = ((d >= 0) & (d <= 9)).all(axis=1)
    return d @ _POW10[block.shape[1]], ok


def _columns(a: np.ndarray, starts: np.ndarray, lengths: np.ndarray, first: int, width: int):
    """Bytes ``first..first+width-1`` (1-based) of each line; short lines read as spaces."""
    rel = np.arange(first - 1, first - 1 + width)
    idx = starts[:, None] + rel[None, :]
    inside = rel[None, :] < lengths[:, None]
    np.minimum(idx, len(a) - 1, out=idx)
    return np.where(inside, a[idx], 32).astype(np.uint8)


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
        self.p001: list[tuple[np.ndarray, ...]] = []
        self.p002: list[tuple[np.ndarray, ...]] = []
        self.p099: list[tuple[np.ndarray, ...]] = []
        self.violations: dict[str, RuleViolations] = {}
        self.last_terminator = b""

    def violation(self, rule: str, error: ExtractError) -> None:
        self.violations.setdefault(rule, RuleViolations(rule)).add(error)

    def block(self, a: np.ndarray, base: int, ends: np.ndarray, final_unterminated: bool) -> None:
        """Process complete lines; ``ends`` are the positions of each line's ``\\n``.

        With ``final_unterminated`` the last entry of ``ends`` is ``len(a)`` (the end
        of a file whose last line has no terminator).
        """
        n = len(ends)
        starts = np.empty(n, dtype=np.int64)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        term_len = np.ones(n, dtype=np.int64)
        if final_unterminated:
            term_len[-1] = 0
        has_cr = (ends > starts) & (a[np.maximum(ends - 1, 0)] == 13) & (term_len == 1)
        lengths = ends - starts - has_cr
        term_len += has_cr
        line_no = self.lines + 1 + np.arange(n)

        terminated = term_len > 0
        if self.line_ending is None and terminated.any():
            self.line_ending = b"\r\n" if has_cr[np.argmax(terminated)] else b"\n"
        if self.line_ending is not None:
            want_cr = self.line_ending == b"\r\n"
            self.mixed += int(((has_cr != want_cr) & terminated).sum())

        rtype, type_ok = _digits(_columns(a, starts, lengths, 1, 3))
        rtype = np.where(type_ok, rtype, 0)
        known = type_ok & _KNOWN[rtype]
        pnr, pnr_ok = _digits(_columns(a, starts, lengths, 4, 10))
        pnr_ok &= lengths >= 13
        np.add.at(self.counts, rtype[known], 1)

        def raw(i: int) -> bytes:
            return bytes(a[starts[i] : starts[i] + lengths[i]])

        for i in np.flatnonzero(~known):
            line = raw(i)
            self.violation(
                "known record type",
                UnknownRecordType(
                    "empty line" if not line.strip() else
                    f"unknown record type {line[:3].decode(ENCODING)!r}",
                    line=int(line_no[i]),
                ),
            )
        person = known & _PERSON[rtype]
        needs_pnr = person | (known & (rtype == 997))
        for i in np.flatnonzero(needs_pnr & ~pnr_ok):
            self.violation(
                "10-digit PNR",
                RecordFormatError(
                    "columns 4-13 must be a 10-digit PNR",
                    line=int(line_no[i]), record_type=f"{rtype[i]:03d}", field="PNR",
                ),
            )
        too_short = person & (lengths < MIN_PERSON_LENGTH)
        too_long = known & (lengths > _MAX_LEN[rtype])
        for i in np.flatnonzero(too_short | too_long):
            code = f"{rtype[i]:03d}"
            self.violation(
                "record length",
                RecordFormatError(
                    f"{lengths[i]} characters; a {code} record has {LAYOUTS[code].length}"
                    f" (shorter lines are space-padded, at most {LENGTH_SLACK} extra allowed)",
                    line=int(line_no[i]), record_type=code,
                    pnr=raw(i)[3:13].decode(ENCODING) if pnr_ok[i] else None,
                ),
            )

        for i in np.flatnonzero(known & ((rtype == 0) | (rtype == 999))):
            self._frame_record(int(rtype[i]), raw(i), int(line_no[i]), base + int(starts[i]),
                               bytes(a[ends[i] - has_cr[i] : ends[i] + (term_len[i] > 0)]))

        # Person spans: runs of consecutive lines of one person.
        ok = person & pnr_ok
        prev_ok = np.concatenate(([False], ok[:-1]))
        prev_pnr = np.concatenate(([-1], pnr[:-1]))
        new = ok & (~prev_ok | (pnr != prev_pnr))
        next_new = np.concatenate((new[1:] | ~ok[1:], [True]))
        first, last = np.flatnonzero(new), np.flatnonzero(ok & next_new)
        span_end = starts[last] + lengths[last] + term_len[last]
        self.spans.append((
            base + starts[first],
            span_end - starts[first],
            last - first + 1,
            pnr[first],
            line_no[first],
        ))

        sel = ok & (rtype == 1)
        if sel.any():
            s, ln = starts[sel], lengths[sel]
            status, status_ok = _digits(_columns(a, s, ln, 24, 2))
            self.p001.append((pnr[sel], _foed_dt(_columns(a, s, ln, 40, 10)),
                              np.where(status_ok, status, -1), _columns(a, s, ln, 40, 10)))
        sel = ok & (rtype == 2)
        if sel.any():
            kom, kom_ok = _digits(_columns(a, starts[sel], lengths[sel], 14, 4))
            self.p002.append((pnr[sel], np.where(kom_ok, kom, -1)))
        sel = ok & (rtype == 99)
        if sel.any():
            s, ln = starts[sel], lengths[sel]
            self.p099.append((pnr[sel], _columns(a, s, ln, 26, 3), _columns(a, s, ln, 29, 2)))

        self.last_terminator = bytes(a[ends[-1] - has_cr[-1] : ends[-1] + (term_len[-1] > 0)])
        self.lines += n

    def _frame_record(self, rtype: int, line: bytes, line_no: int, offset: int, term: bytes) -> None:
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
) -> ExtractIndex:
    """Read ``path`` once and build its :class:`ExtractIndex`.

    ``progress(bytes_done, bytes_total)`` is called after each block. The only error
    raised is for a file that is not line-based at all; every other problem is
    recorded in ``violations`` for validation to report.
    """
    path = Path(path)
    size = path.stat().st_size
    sc = _Scanner()
    buf = bytearray(chunk_size + MAX_LINE)
    view = memoryview(buf)
    carry, base, done = 0, 0, 0
    with open(path, "rb") as fh:
        while True:
            got = fh.readinto(view[carry : carry + chunk_size])
            done += got
            total = carry + got
            a = np.frombuffer(buf, dtype=np.uint8, count=total)
            if got == 0:
                if total:
                    sc.block(a, base, np.array([total], dtype=np.int64), True)
                break
            nl = np.flatnonzero(a == 10)
            if len(nl) == 0:
                if total > MAX_LINE:
                    raise RecordFormatError(
                        f"no line terminator within {MAX_LINE} bytes; a change extract has "
                        "one record per line (LF or CRLF)",
                        line=sc.lines + 1,
                    )
                carry = total
                del a
                continue
            sc.block(a, base, nl, False)
            cut = int(nl[-1]) + 1
            base += cut
            carry = total - cut
            del a
            buf[0:carry] = buf[cut:total]
            if progress:
                progress(done, size)
    return _finish(sc, path, size)


def _finish(sc: _Scanner, path: Path, size: int) -> ExtractIndex:
    off, nbytes, nrec, span_pnr, span_line = _concat(sc.spans, 5, np.int64)
    uniq, span_person = np.unique(span_pnr, return_inverse=True)
    n = len(uniq)
    records = np.bincount(span_person, weights=nrec, minlength=n).astype(np.int64)
    first_line = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_line, span_person, span_line)

    birth = birth_from_pnr(uniq)
    from_pnr = np.ones(n, dtype=bool)
    status = np.full(n, -1, dtype=np.int64)
    has_001 = np.zeros(n, dtype=bool)
    foed_text = np.full(n, "", dtype=object)
    p_pnr, p_birth, p_status, p_raw = _concat(sc.p001, 4, np.int64)
    if len(p_pnr):
        who, b, st, raw = _first_per_person(np.searchsorted(uniq, p_pnr), p_birth, p_status,
                                            p_raw)
        has_001[who] = True
        status[who] = st
        good = b > 0
        birth[who[good]] = b[good]
        from_pnr[who[good]] = False
        foed_text[who] = [r.tobytes().decode(ENCODING) for r in raw]
    municipality = np.full(n, -1, dtype=np.int64)
    k_pnr, k_kom = _concat(sc.p002, 2, np.int64)
    if len(k_pnr):
        who, kom = _first_per_person(np.searchsorted(uniq, k_pnr), k_kom)
        municipality[who] = kom

    persons = pd.DataFrame({
        "pnr": uniq.astype(np.int64),
        "birth_date": birth.astype(np.int64),
        "birth_from_pnr": from_pnr,
        "foed_dt_text": foed_text,
        "status": status,
        "municipality": municipality,
        "has_001": has_001,
        "records": records,
        "first_line": first_line,
    })
    if sc.p099:
        e_pnr = np.concatenate([p[0] for p in sc.p099])
        codes = np.concatenate([p[1] for p in sc.p099])
        marks = np.concatenate([p[2] for p in sc.p099])
        events = pd.DataFrame({
            "person": np.searchsorted(uniq, e_pnr).astype(np.int64),
            "code": _decode(codes),
            "derived": _decode(marks).str.strip(),
        })
    else:
        events = pd.DataFrame({"person": np.empty(0, np.int64), "code": [], "derived": []})

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
        mixed_line_endings=sc.mixed,
    )


def _decode(block: np.ndarray) -> pd.Series:
    """Fixed-width byte columns to text, decoding each distinct value once."""
    width = block.shape[1]
    as_bytes = np.ascontiguousarray(block).view(f"S{width}").ravel()
    uniq, inv = np.unique(as_bytes, return_inverse=True)
    # numpy's S dtype strips trailing NULs only; our padding is spaces, kept until .strip().
    text = np.array([u.decode(ENCODING) for u in uniq], dtype=object)
    return pd.Series(text[inv], dtype=object)

"""Structural validation of a change extract (product.md §6, ``cpr-format.md`` §1).

Every rule is checked and every broken rule is reported, each with its line number,
record type, field and a masked PNR, so a data engineer can fix or escalate the file
in one go. The line-level rules were evaluated during :func:`~.index.scan`; the
file-level rules (framing, counter, dates, one 001 per person) are checked here.

Rules:

* the file is not empty;
* the first line is a 000 start record and there is exactly one;
* the last line is a 999 end record and there is exactly one;
* the 999 counter equals the number of lines between 000 and 999;
* every line has a known record type (000-030, 050, 052, 099, 910, 997, 999);
* person records and 997 carry a 10-digit PNR in columns 4-13;
* record lengths are plausible (at least up to the PNR, at most the documented
  length plus :data:`~.index.LENGTH_SLACK`; 000 and 999 need all their fields);
* OPGAVENR is six digits; PRODDTO and PRODDTOFORRIG are real dates, the previous
  one before the production date;
* every person has exactly one 001 record (CPR always delivers it, ``cpr-format.md``
  §1.1; a second one means the person's block came twice);
* no record holds a control character (0x00-0x1F except the line end, 0x7F-0x9F);
* all lines end the same way (LF or CRLF), naming the first line that does not;
* a file named as CPR names it (``D<YYMMDD>.L<task>``, ``cpr-format.md`` §6.1) carries
  the production date and task number of its 000 record (a renamed file would be
  checked against another task's chain);
* optionally: PRODDTO is the expected delivery day, PRODDTOFORRIG the production
  date of the last processed extract.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from cpr_abonnement.errors import (
    ExtractError,
    ExtractValidationFailed,
    ProductionDateGap,
    ProductionDateMismatch,
    RecordFormatError,
    TrailerCountMismatch,
)
from cpr_abonnement.extract import naming
from cpr_abonnement.extract.blocks import CONTROL, MIN_LENGTH
from cpr_abonnement.extract.layouts import numeric
from cpr_abonnement.extract.model import MAX_EXAMPLES, ExtractIndex, RuleViolations, StartRecord

#: Bytes of a file's end enough to hold its whole 999 record (35 characters, at most
#: LENGTH_SLACK more) and its line end.
TAIL_BYTES = 512


def _one(rule: str, error: ExtractError) -> RuleViolations:
    found = RuleViolations(rule)
    found.add(error)
    return found


def violations(
    index: ExtractIndex,
    *,
    expect_date: dt.date | None = None,
    expect_previous: dt.date | None = None,
) -> list[RuleViolations]:
    """Every broken rule with an exact count and example errors; empty when valid."""
    out: list[RuleViolations] = []
    if index.size == 0 or index.lines == 0:
        return [_one("not empty", ExtractError("the file is empty"))]

    start, end = index.start, index.end
    if not index.start_lines or index.start_lines[0] != 1:
        out.append(_one("000 first", RecordFormatError(
            "the first line must be the 000 start record", line=1, record_type="000")))
    if len(index.start_lines) > 1:
        out.append(_one("one 000", RecordFormatError(
            f"{len(index.start_lines)} start records (lines "
            f"{', '.join(map(str, index.start_lines[:5]))}); exactly one expected",
            line=index.start_lines[1], record_type="000")))
    if not index.end_lines or index.end_lines[-1] != index.lines:
        out.append(_one("999 last", RecordFormatError(
            "the last line must be the 999 end record (file truncated?)",
            line=index.lines, record_type="999")))
    if len(index.end_lines) > 1:
        out.append(_one("one 999", RecordFormatError(
            f"{len(index.end_lines)} end records; exactly one expected",
            line=index.end_lines[0], record_type="999")))

    if start is not None:
        out += _start_record_rules(start, expect_date, expect_previous)
        out += _file_name_rules(index.path.name, start)
    if end is not None:
        if len(end.raw) < MIN_LENGTH["999"] or end.counter is None:
            out.append(_one("999 counter", RecordFormatError(
                "TAELLER (columns 14-21) must be 8 digits",
                line=end.line_no, record_type="999", field="TAELLER")))
        elif start is not None and end.line_no > start.line_no:
            between = end.line_no - start.line_no - 1
            if end.counter != between:
                out.append(_one("999 counter", TrailerCountMismatch(
                    f"counter says {end.counter} records, the file has {between} "
                    "between 000 and 999",
                    line=end.line_no, record_type="999", field="TAELLER")))

    out += index.violations.values()

    no_001 = np.flatnonzero(~index.persons["has_001"].to_numpy())
    if len(no_001):
        shown = no_001[:MAX_EXAMPLES]
        lines = index.persons["first_line"].to_numpy()[shown]
        found = RuleViolations("001 per person", count=len(no_001))
        found.examples = [
            RecordFormatError("person has no 001 record", line=int(line), record_type="001",
                              pnr=pnr)
            for line, pnr in zip(lines, index.pnr_text(shown), strict=True)
        ]
        out.append(found)
    return out


def _start_record_rules(start, expect_date, expect_previous) -> list[RuleViolations]:
    out: list[RuleViolations] = []

    def bad(rule: str, err: ExtractError) -> None:
        out.append(_one(rule, err))

    where = {"line": start.line_no, "record_type": "000"}
    if len(start.raw) < MIN_LENGTH["000"]:
        bad("record length", RecordFormatError(
            f"{len(start.raw)} characters; the 000 record has 35", **where))
    if not numeric(start.task_number):
        bad("000 task number", RecordFormatError(
            f"OPGAVENR {start.task_number!r} is not 6 digits", field="OPGAVENR", **where))
    if start.production_date is None:
        bad("000 production date", RecordFormatError(
            f"PRODDTO {start.production_text!r} is not a real date (YYYYMMDD)",
            field="PRODDTO", **where))
    if start.previous_date is None:
        bad("000 previous production date", RecordFormatError(
            f"PRODDTOFORRIG {start.previous_text!r} is not a real date (YYYYMMDD)",
            field="PRODDTOFORRIG", **where))
    elif start.production_date and start.previous_date >= start.production_date:
        bad("000 previous production date", RecordFormatError(
            f"PRODDTOFORRIG {start.previous_date} is not before PRODDTO "
            f"{start.production_date}", field="PRODDTOFORRIG", **where))
    if expect_date and start.production_date and start.production_date != expect_date:
        bad("expected production date", ProductionDateMismatch(
            f"PRODDTO is {start.production_date}, expected {expect_date}",
            field="PRODDTO", **where))
    gap = chain_gap(start, expect_previous)
    if gap is not None:
        bad("production date chain", gap)
    return out


def chain_gap(start: StartRecord, last_produced: dt.date | None) -> ProductionDateGap | None:
    """The production-date chain rule (product.md §6), written once: the extract's
    PRODDTOFORRIG must be the production date of the last extract processed (none
    processed yet: nothing to compare). A mismatch means a day is missing."""
    if last_produced is None or start.previous_date is None:
        return None
    if start.previous_date == last_produced:
        return None
    return ProductionDateGap(
        f"PRODDTOFORRIG is {start.previous_date} but the last processed extract of task "
        f"{start.task_number} was produced {last_produced}: an extract is missing",
        line=start.line_no, record_type="000", field="PRODDTOFORRIG")


def end_problem(tail: bytes, size: int) -> RuleViolations | None:
    """Why a file of ``size`` bytes ending in ``tail`` (its last :data:`TAIL_BYTES`) does
    not end with a whole 999 end record: full length and its line end. None if it does.

    The sensor asks this of a file that has stopped changing: such a file is complete,
    so a problem here means it is broken (truncated, empty, without 999, binary), not
    still arriving. A file that passes is validated in full when received.
    """
    if size == 0:
        return _one("not empty", ExtractError("the file is empty"))
    data = np.frombuffer(tail, dtype=np.uint8)
    line_ends = np.flatnonzero(data == 10)
    crs = line_ends[line_ends > 0] - 1
    terminators = np.concatenate([line_ends, crs[data[crs] == 13]])
    controls = np.setdiff1d(np.flatnonzero(CONTROL[data]), terminators)
    if len(controls):
        return _one("no control characters", RecordFormatError(
            f"control character 0x{int(data[controls[0]]):02X} {len(tail) - controls[0]} "
            "bytes before the end of the file: not an ISO-8859-1 text extract"))
    terminated = tail.endswith(b"\n")
    last = (tail[:-1].removesuffix(b"\r") if terminated else tail).rsplit(b"\n", 1)[-1]
    end = {"record_type": "999"}
    if not last.startswith(b"999"):
        return _one("999 last", RecordFormatError(
            "the last line must be the 999 end record (file truncated?)", **end))
    if len(last) < MIN_LENGTH["999"]:
        return _one("999 last", RecordFormatError(
            f"the 999 end record has {len(last)} of its {MIN_LENGTH['999']} characters "
            "(file truncated?)", **end))
    if not terminated:
        return _one("999 last", RecordFormatError(
            "the 999 end record has no line end (file truncated?)", **end))
    return None


def _file_name_rules(name: str, start) -> list[RuleViolations]:
    """The name's production date and task number against record 000's. Names not in
    CPR's form (a file validated by hand under another name) are not compared."""
    named = naming.parse(name)
    if named is None:
        return []
    where = {"line": start.line_no, "record_type": "000"}
    out = []
    if named.task_number != start.task_number:
        out.append(_one("file name matches 000", RecordFormatError(
            f"the file is named {name} but OPGAVENR {start.task_number} is in record 000",
            field="OPGAVENR", **where)))
    if start.production_date and named.yymmdd != f"{start.production_date:%y%m%d}":
        out.append(_one("file name matches 000", RecordFormatError(
            f"the file is named {name} but PRODDTO {start.production_date} is in record 000",
            field="PRODDTO", **where)))
    return out


def check(
    index: ExtractIndex,
    *,
    expect_date: dt.date | None = None,
    expect_previous: dt.date | None = None,
) -> None:
    """Raise :class:`ExtractValidationFailed` naming every broken rule, or return."""
    found = violations(index, expect_date=expect_date, expect_previous=expect_previous)
    if found:
        raise ExtractValidationFailed(
            [summarise(v) for v in found], source=index.path.name
        )


def summarise(v: RuleViolations) -> ExtractError:
    """One error per rule: the first example, with the count when there are more."""
    first = v.examples[0]
    if v.count == 1:
        return first
    return first.extended(f" (and {v.count - 1} more line(s) breaking rule '{v.rule}')")

"""What one pass over an extract learns: the index every later step works from.

The extract itself stays on disk; the index holds per-person facts for filtering and
the byte spans of each person's records for writing, plus the structural problems the
pass found (see :mod:`cpr_abonnement.extract.validation`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from cpr_abonnement.errors import ExtractError
from cpr_abonnement.extract.layouts import PLATFORM_TYPES

#: How many example lines a rule keeps; the count is always exact.
MAX_EXAMPLES = 10


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

    def dates(self) -> tuple[dt.date, dt.date]:
        """Production and previous production date; an :class:`ExtractError` when either
        is not a date (only an unvalidated extract can get here)."""
        if self.production_date is None or self.previous_date is None:
            raise ExtractError("record 000 has no valid PRODDTO / PRODDTOFORRIG",
                               line=self.line_no, record_type="000")
        return self.production_date, self.previous_date


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
    #: One row per person, in order of first appearance. Columns: ``pnr`` (int64), ``birth_date``
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

    def start_record(self) -> StartRecord:
        """Record 000; an :class:`ExtractError` when there is none (only an unvalidated
        extract can get here, so this is a guard, not a rule: validation names the rule)."""
        if self.start is None:
            raise ExtractError("the extract has no 000 start record", record_type="000")
        return self.start

    def pnr_text(self, rows: np.ndarray | None = None) -> pd.Series:
        """PNRs as 10-character strings (only for display after masking, or for joins)."""
        pnrs = self.persons["pnr"] if rows is None else self.persons["pnr"].iloc[rows]
        return pnrs.astype(str).str.zfill(10)

"""What the checks said about each inbound extract, kept for the operator console.

An :class:`~cpr_abonnement.store.models.ExtractRun` exists only for an extract
that was accepted; a rejected one leaves a quarantined file and a ``.reason.txt`` that
only someone with a shell on the host can read. ``parse_and_validate`` therefore
records every verdict here too (accepted, rejected, held by a chain gap) with the broken
rules (rule, line, record type, field) and the great-expectations results. Every text
is scrubbed before it is stored, so nothing here holds a full PNR.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.errors import ExtractError
from cpr_abonnement.store.models import ExtractCheck

ACCEPTED, REJECTED, HELD = "accepted", "rejected", "held"


@dataclass(frozen=True)
class Problem:
    """One broken rule, located (line, record type, field) as the error located it."""

    rule: str
    message: str
    count: int = 1
    line: int | None = None
    record_type: str | None = None
    field: str | None = None

    @classmethod
    def of(cls, rule: str, error: ExtractError, count: int = 1) -> Problem:
        return cls(rule, scrub(str(error)), count, error.line, error.record_type, error.field)


@dataclass(frozen=True)
class Expectation:
    """One great-expectations result; ``examples`` are masked by the suite itself."""

    name: str
    column: str
    success: bool
    unexpected: int
    examples: tuple[str, ...] = ()

    @property
    def state(self) -> str:
        """``passed``, ``warned`` (met within tolerance, with odd values) or ``failed``."""
        if not self.success:
            return "failed"
        return "warned" if self.unexpected else "passed"


@dataclass(frozen=True)
class CheckRecord:
    file_name: str
    verdict: str
    checked_at: dt.datetime
    size_bytes: int
    task_number: str | None = None
    production_date: dt.date | None = None
    previous_date: dt.date | None = None
    persons: int | None = None
    records: int | None = None
    problems: tuple[Problem, ...] = ()
    expectations: tuple[Expectation, ...] = field(default=())
    quarantined_to: str | None = None


def record(engine: Engine, check: CheckRecord) -> None:
    """Store one verdict (texts scrubbed again: a stored PNR could not be taken back)."""
    with Session(engine) as s, s.begin():
        s.add(ExtractCheck(
            checked_at=check.checked_at, file_name=check.file_name, verdict=check.verdict,
            task_number=check.task_number, production_date=check.production_date,
            previous_date=check.previous_date, size_bytes=check.size_bytes,
            persons=check.persons, records=check.records,
            problems=_dump([p.__dict__ for p in check.problems]),
            expectations=_dump([{**e.__dict__, "examples": list(e.examples)}
                                for e in check.expectations]),
            quarantined_to=check.quarantined_to))


def _dump(items: list[dict[str, Any]]) -> str:
    return scrub(json.dumps(items, ensure_ascii=False, default=str))


def recent(engine: Engine, limit: int = 200) -> list[CheckRecord]:
    """The latest ``limit`` verdicts, newest first."""
    with Session(engine) as s:
        rows = s.scalars(select(ExtractCheck).order_by(ExtractCheck.checked_at.desc(),
                                                       ExtractCheck.id.desc()).limit(limit))
        return [_of(r) for r in rows]


def _of(row: ExtractCheck) -> CheckRecord:
    problems = tuple(Problem(**p) for p in json.loads(row.problems or "[]"))
    expectations = tuple(Expectation(**{**e, "examples": tuple(e.get("examples", ()))})
                         for e in json.loads(row.expectations or "[]"))
    return CheckRecord(row.file_name, row.verdict, row.checked_at, row.size_bytes,
                       row.task_number, row.production_date, row.previous_date, row.persons,
                       row.records, problems, expectations, row.quarantined_to)

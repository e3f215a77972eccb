"""CPR's file name for a change extract: ``D<YYMMDD>.L<task number>`` (``cpr-format.md``
§6.1), written and read here only.

The name carries the production date (two-digit year) and the six-digit task number
(OPGAVENR) of record 000. Delivered files keep CPR's name, so subscribers that already
parse it keep working; the inbound sensor looks for it, and validation compares it with
record 000.

>>> extract_name(dt.date(2026, 11, 26), "431101")
'D261126.L431101'
>>> parse("d261126.l431101")
ExtractName(yymmdd='261126', task_number='431101')
>>> parse("D261126.L431101.metadata") is None
True
>>> bool(name_pattern(dt.date(2026, 11, 26)).fullmatch("D261126.L999999"))
True
>>> bool(name_pattern(dt.date(2026, 11, 26), "431101").fullmatch("D261126.L999999"))
False
"""

from __future__ import annotations

import datetime as dt
import re
from typing import NamedTuple

#: Matched case-insensitively: some transfers upper- or lower-case file names.
_NAME = re.compile(r"D(?P<date>\d{6})\.L(?P<task>\d{6})", re.IGNORECASE)


class ExtractName(NamedTuple):
    yymmdd: str
    task_number: str


def extract_name(production_date: dt.date, task_number: str) -> str:
    """The name CPR gives the extract of ``task_number`` produced on ``production_date``."""
    return f"D{production_date:%y%m%d}.L{task_number}"


def parse(name: str) -> ExtractName | None:
    """Date and task number of a name in CPR's form; ``None`` for any other name."""
    found = _NAME.fullmatch(name)
    return ExtractName(found["date"], found["task"]) if found else None


def name_pattern(day: dt.date, task_number: str | None = None) -> re.Pattern[str]:
    """The names an extract produced on ``day`` may have (any task when ``None``)."""
    task = re.escape(task_number) if task_number else r"\d{6}"
    return re.compile(rf"D{day:%y%m%d}\.L{task}", re.IGNORECASE)


def wildcard(day: dt.date) -> str:
    """``D<YYMMDD>.L*``: how messages say which names were looked for."""
    return f"D{day:%y%m%d}.L*"

"""The CPR delivery calendar: which days bring a change extract.

CPR produces change extracts Monday to Friday except 5 June, 24 December and
31 December (product.md §5). Other CPR documents mention further public holidays, so
the closures are data: the recurring and one-off dates in ``data/closed-days.csv``,
plus any extra dates a deployment passes in. Everything here is a pure function of
its arguments (no clock reads), which is what Airflow's timetable contract needs.

>>> cal = DeliveryCalendar.default()
>>> cal.is_delivery_day(dt.date(2026, 12, 24)), cal.is_delivery_day(dt.date(2026, 12, 23))
(False, True)
>>> cal.previous_delivery_day(dt.date(2026, 12, 28))   # 25 Dec is not a closure per §5
datetime.date(2026, 12, 25)
>>> cal.next_delivery_day(dt.date(2027, 6, 4))          # Friday 4 June 2027 -> Monday 7 June
datetime.date(2027, 6, 7)
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DEFAULT_CLOSURES = "closed-days.csv"
_ONE_DAY = dt.timedelta(days=1)


class CalendarDataError(ValueError):
    """The closure-date file is missing or has a line that is neither --MM-DD nor a date."""


@dataclass(frozen=True)
class DeliveryCalendar:
    """Weekdays minus recurring (``(month, day)``) and one-off closure dates."""

    recurring: frozenset[tuple[int, int]]
    dates: frozenset[dt.date] = frozenset()

    @classmethod
    def default(cls, extra: Iterable[str | dt.date] = ()) -> DeliveryCalendar:
        """The packaged closure file plus ``extra`` dates (``YYYY-MM-DD`` or ``--MM-DD``)."""
        text = resources.files("cpr_abonnement").joinpath("data", DEFAULT_CLOSURES).read_text(
            encoding="utf-8"
        )
        return cls.parse([*_rows(text), *(str(e) for e in extra)])

    @classmethod
    def from_file(cls, path: str | Path, extra: Iterable[str | dt.date] = ()) -> DeliveryCalendar:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CalendarDataError(f"closure-date file {path} does not exist") from None
        return cls.parse([*_rows(text), *(str(e) for e in extra)])

    @classmethod
    def parse(cls, entries: Iterable[str]) -> DeliveryCalendar:
        recurring: set[tuple[int, int]] = set()
        dates: set[dt.date] = set()
        for entry in entries:
            entry = entry.strip()
            try:
                if entry.startswith("--"):
                    month, day = int(entry[2:4]), int(entry[5:7])
                    dt.date(2000, month, day)  # a leap year, so --02-29 is accepted
                    if len(entry) != 7 or entry[4] != "-":
                        raise ValueError
                    recurring.add((month, day))
                else:
                    dates.add(dt.date.fromisoformat(entry))
            except ValueError:
                raise CalendarDataError(
                    f"closure date {entry!r} is neither --MM-DD nor YYYY-MM-DD"
                ) from None
        return cls(frozenset(recurring), frozenset(dates))

    def entries(self) -> list[str]:
        """The closures as strings, sorted; ``parse(entries())`` gives an equal calendar."""
        return sorted(f"--{m:02d}-{d:02d}" for m, d in self.recurring) + sorted(
            d.isoformat() for d in self.dates
        )

    def is_delivery_day(self, day: dt.date) -> bool:
        return (
            day.weekday() < 5
            and (day.month, day.day) not in self.recurring
            and day not in self.dates
        )

    def next_delivery_day(self, day: dt.date) -> dt.date:
        """First delivery day strictly after ``day``."""
        day += _ONE_DAY
        while not self.is_delivery_day(day):
            day += _ONE_DAY
        return day

    def previous_delivery_day(self, day: dt.date) -> dt.date:
        """Last delivery day strictly before ``day`` (what PRODDTOFORRIG should hold)."""
        day -= _ONE_DAY
        while not self.is_delivery_day(day):
            day -= _ONE_DAY
        return day

    def delivery_days(self, first: dt.date, last: dt.date) -> Iterator[dt.date]:
        """Delivery days in ``[first, last]``, both included."""
        day = first
        while day <= last:
            if self.is_delivery_day(day):
                yield day
            day += _ONE_DAY


def _rows(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return [row["when"] for row in csv.DictReader(lines)]

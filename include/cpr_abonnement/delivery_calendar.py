"""The CPR delivery calendar: which days bring a change extract.

CPR produces change extracts Monday to Friday except 5 June, 24 December and
31 December (product.md §5). Other CPR documents mention further public holidays, so
the closures are data: the recurring and one-off dates in ``data/closed-days.csv``,
plus any extra dates a deployment passes in. Everything here is a pure function of
its arguments (no clock reads), which is what Airflow's timetable contract needs.

It is also the one place that turns a delivery day into instants: when day D runs
(:func:`run_time`, wall-clock time in Danish time, DST-correct), when a missing extract
for D becomes an alert (:func:`extract_deadline`), which day is "today" in Denmark
(:func:`local_today`) and the latest day whose run time (plus a grace) has passed
(:meth:`DeliveryCalendar.latest_due`). The timetable, the sensor, the run-date check and
``cprsub health`` all ask here, so they cannot disagree about a day.

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
from zoneinfo import ZoneInfo

from cpr_abonnement.errors import CalendarDataError

DEFAULT_CLOSURES = "closed-days.csv"
_ONE_DAY = dt.timedelta(days=1)
#: CPR's and the subscribers' clock: run times and "today" are Danish wall-clock time.
DANISH_TIME = ZoneInfo("Europe/Copenhagen")


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

    def day_named_by(self, moment: dt.datetime, zone: ZoneInfo | None = None) -> dt.date:
        """The delivery day a run whose logical date is ``moment`` is for: its date in
        Denmark, or the delivery day before it when that date is closed (a manual run on
        a Saturday is Friday's). The timetable and the run's own check share this rule."""
        day = moment.astimezone(zone or DANISH_TIME).date()
        return day if self.is_delivery_day(day) else self.previous_delivery_day(day)

    def delivery_days(self, first: dt.date, last: dt.date) -> Iterator[dt.date]:
        """Delivery days in ``[first, last]``, both included."""
        day = first
        while day <= last:
            if self.is_delivery_day(day):
                yield day
            day += _ONE_DAY

    def latest_due(self, now: dt.datetime, at: str, *, grace: dt.timedelta = dt.timedelta(0),
                   zone: ZoneInfo = DANISH_TIME) -> dt.date:
        """The latest delivery day whose run time (``at``) plus ``grace`` has passed at
        ``now``: what the scheduler creates a run for (no grace) and what ``cprsub
        health`` checks (with its grace)."""
        day = now.astimezone(zone).date()
        while not (self.is_delivery_day(day) and run_time(day, at, zone) + grace <= now):
            day -= _ONE_DAY
        return day


def run_time(day: dt.date, at: str, zone: ZoneInfo = DANISH_TIME) -> dt.datetime:
    """When delivery day ``day`` runs: ``at`` (``HH:MM``) on that date in ``zone``.

    The wall-clock time stays put when the UTC offset changes. A time the clock skips
    (spring) or shows twice (autumn) means the later instant, as Airflow's pendulum
    does, so the timetable and everything else agree even then.
    """
    local = dt.datetime.combine(day, dt.time.fromisoformat(at), tzinfo=zone)
    return max(local.replace(fold=0), local.replace(fold=1),
               key=lambda t: t.astimezone(dt.UTC)).astimezone(dt.UTC).astimezone(zone)


def extract_deadline(day: dt.date, at: str, hours: float,
                     zone: ZoneInfo = DANISH_TIME) -> dt.datetime:
    """When a missing extract for ``day`` becomes an alert: its run time plus ``hours``."""
    return run_time(day, at, zone) + dt.timedelta(hours=hours)


def local_today(now: dt.datetime, zone: ZoneInfo = DANISH_TIME) -> dt.date:
    """The date in Denmark at the instant ``now`` (aware)."""
    return now.astimezone(zone).date()


def _rows(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return [row["when"] for row in csv.DictReader(lines)]

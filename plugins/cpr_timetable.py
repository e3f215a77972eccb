"""The CPR delivery calendar as an Airflow timetable: one run per delivery day.

Delivery days are Monday-Friday except 5 June, 24 and 31 December, plus any closure
dates given as data (``include/cpr_abonnement/data/closed-days.csv`` and the
``extra_closures`` argument); see :mod:`cpr_abonnement.delivery_calendar`, which this class only
translates into Airflow's intervals.

Shape of a run for delivery day D:

* data interval = D as a UTC calendar day ``[D 00:00Z, D+1 00:00Z)``, so the logical
  date *is* the delivery day and ``airflow backfill create --from-date D1 --to-date D2``
  selects exactly the delivery days D1..D2;
* run after = D at the configured local time in Europe/Copenhagen (DST-correct: the
  wall-clock time stays put when the UTC offset changes).

Without catch-up (``catchup=False``, as the daily DAG is set) the scheduler creates at
most one run: the latest delivery day whose run time has passed, whatever came before.
A backfill of old days, a paused DAG or a scheduler outage never makes it create a run
per missed day (each would alert "extract not received"). After an outage only the
latest due day runs. (One exception, Airflow's own: if the scheduler and the DAG
processor were down together and the scheduler comes back before the DAG processor's
first parse, it first creates the run it had already computed before the outage, the
first missed day; never more than that one.) Other missed days run only when a data
engineer backfills them (``airflow backfill create``, which asks with
``catchup=True`` and so gets every day in its range); until then the latest day's
production-date chain check fails naming the gap, so a missed day cannot go unnoticed.

Everything the scheduler needs is serialized (time, zone, closures), so it never
re-reads the DAG file or the calendar file.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pendulum
from airflow.plugins_manager import AirflowPlugin
from airflow.timetables.base import DagRunInfo, DataInterval, Timetable

from cpr_abonnement.delivery_calendar import DeliveryCalendar, run_time


class CprDeliveryTimetable(Timetable):
    """Runs on CPR delivery days at ``at`` local time (``HH:MM``)."""

    periodic = True

    def __init__(self, at: str = "21:00", timezone: str = "Europe/Copenhagen",
                 extra_closures: list[str] | tuple[str, ...] = (),
                 closures: list[str] | None = None) -> None:
        self.at = at
        self.timezone = timezone
        # ``closures`` is the complete list (from deserialize); otherwise the packaged
        # calendar plus ``extra_closures``.
        cal = (DeliveryCalendar.parse(closures) if closures is not None
               else DeliveryCalendar.default(extra=extra_closures))
        self.calendar = cal
        # The DAG list's schedule tooltip: every closure in words.
        self.description = (f"CPR delivery days: Monday to Friday except "
                            f"{closures_in_words(cal)}, at {at} Danish time ({timezone})")

    # -- Airflow protocol -------------------------------------------------------------
    @property
    def summary(self) -> str:
        """The DAG list's schedule column: short, so one-off closures beyond a couple
        are counted rather than listed (the tooltip lists them)."""
        return f"Mon–Fri except {closures_in_words(self.calendar, list_dates=2)}, at {self.at} " \
               f"{self.timezone}"

    def serialize(self) -> dict[str, Any]:
        return {"at": self.at, "timezone": self.timezone, "closures": self.calendar.entries()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> CprDeliveryTimetable:
        return cls(data["at"], data["timezone"], closures=list(data["closures"]))

    def validate(self) -> None:
        from airflow.exceptions import AirflowTimetableInvalid

        try:
            dt.time.fromisoformat(self.at)
            pendulum.timezone(self.timezone)
        except (ValueError, pendulum.tz.exceptions.InvalidTimezone) as exc:
            raise AirflowTimetableInvalid(f"bad time or zone: {exc}") from exc

    def infer_manual_data_interval(self, *, run_after: pendulum.DateTime) -> DataInterval:
        # A manual run (or `airflow dags test DAG D`) is for the delivery day on or before
        # the date it names, read in Danish time (UTC midnight is the same date there).
        return self.interval(self.calendar.day_named_by(run_after, ZoneInfo(self.timezone)))

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None,
                         restriction) -> DagRunInfo | None:
        if last_automated_data_interval is None and restriction.earliest is None:
            return None  # no start_date: never schedule
        candidates = []
        if last_automated_data_interval is not None:
            # The day after the last scheduled (or backfilled) run.
            candidates.append(self.calendar.next_delivery_day(
                last_automated_data_interval.start.in_timezone("UTC").date()))
        if restriction.earliest is not None:
            candidates.append(self.first_on_or_after(restriction.earliest))
        if not restriction.catchup:
            # Whatever ran before (a backfill of old days, nothing during an outage), the
            # scheduler creates at most the latest due day: the only clock read, as in
            # Airflow's own timetables. Backfills pass catchup=True and walk every day.
            candidates.append(self.latest_due(pendulum.now("UTC")))
        day = max(candidates)
        if restriction.latest is not None and self.logical(day) > restriction.latest:
            return None  # past the end: also what ends a backfill's loop
        return DagRunInfo(run_after=self.run_after(day), data_interval=self.interval(day))

    # -- helpers (pure) --------------------------------------------------------------
    def logical(self, day: dt.date) -> pendulum.DateTime:
        return pendulum.datetime(day.year, day.month, day.day, tz="UTC")

    def interval(self, day: dt.date) -> DataInterval:
        return DataInterval(self.logical(day), self.logical(day + dt.timedelta(days=1)))

    def run_after(self, day: dt.date) -> pendulum.DateTime:
        return pendulum.instance(run_time(day, self.at, ZoneInfo(self.timezone)))

    def first_on_or_after(self, earliest: pendulum.DateTime) -> dt.date:
        """First delivery day whose logical date (its UTC midnight) is >= ``earliest``."""
        earliest = earliest.in_timezone("UTC")
        day = earliest.date()
        if earliest.time() != dt.time(0):
            day += dt.timedelta(days=1)
        return day if self.calendar.is_delivery_day(day) else self.calendar.next_delivery_day(day)

    def latest_due(self, now: pendulum.DateTime) -> dt.date:
        """The latest delivery day whose run time has passed at ``now``."""
        return self.calendar.latest_due(now, self.at, zone=ZoneInfo(self.timezone))


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _days_by_month(days: list[tuple[int, int, int | None]]) -> list[str]:
    """(month, day, year or None) → ``5 June``, ``24 and 31 December``, ``1 January 2027``:
    days of one month (and year) together, in calendar order."""
    groups: dict[tuple[int | None, int], list[int]] = {}
    for month, day, year in sorted(days, key=lambda d: (d[2] or 0, d[0], d[1])):
        groups.setdefault((year, month), []).append(day)
    return [f"{_and([str(d) for d in ds])} {MONTHS[month - 1]}" + (f" {year}" if year else "")
            for (year, month), ds in groups.items()]


def closures_in_words(cal: DeliveryCalendar, list_dates: int | None = None) -> str:
    """The closures as a reader says them: ``5 June, 24 and 31 December`` for the yearly
    ones, then the one-off dates (``and 1 January 2027``), or, past ``list_dates`` of
    them, their number (``and 5 other closed days``)."""
    text = ", ".join(_days_by_month([(m, d, None) for m, d in cal.recurring])) or "no day"
    dates = sorted(cal.dates)
    if not dates:
        return text
    if list_dates is not None and len(dates) > list_dates:
        return f"{text} and {len(dates)} other closed days"
    return f"{text} and {', '.join(_days_by_month([(d.month, d.day, d.year) for d in dates]))}"


class CprTimetablePlugin(AirflowPlugin):
    name = "cpr_timetable"
    timetables = [CprDeliveryTimetable]  # noqa: RUF012 (Airflow's plugin attribute)

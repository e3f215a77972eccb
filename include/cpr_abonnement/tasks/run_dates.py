"""Which delivery day a run processes, and the runs refused at once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cpr_abonnement.delivery_calendar import DeliveryCalendar, local_today
from cpr_abonnement.errors import RunDateRefused


def delivery_day(context: dict[str, Any], calendar: DeliveryCalendar | None = None
                 ) -> dt.date:
    """The business date of a run: its data interval's UTC day (see the timetable).

    One rule, so a run never processes a day other than the one the UI shows for it
    (and whose data interval fixes its filter snapshot): the ``delivery_day`` param is
    for runs triggered without a logical date. Given with a logical date (the trigger
    form always fills one in) it must name the same delivery day, else the run is
    refused with :class:`RunDateRefused` saying what to do.

    With ``calendar`` (the first task passes it), the data interval must also be the
    one the logical date names. Airflow 3.3's ``airflow dags trigger --logical-date D``
    takes the interval from the time of triggering, not from D, so such a run would
    show D and process another day: it is refused instead.
    """
    start = context.get("data_interval_start")
    named = _named_day((context.get("params") or {}).get("delivery_day"))
    if start is None:
        if named is None:
            raise RunDateRefused("this run has no logical date: trigger it with one, or "
                                 "set the delivery_day param (YYYY-MM-DD)")
        return named
    day = start.astimezone(dt.UTC).date()
    logical = context.get("logical_date")
    if calendar is not None and logical is not None \
            and (meant := calendar.day_named_by(logical)) != day:
        raise RunDateRefused(
            f"this run's logical date {logical:%Y-%m-%d} names delivery day {meant}, but "
            f"its data interval is for {day} (Airflow's `airflow dags trigger "
            f"--logical-date` takes the interval from the time of triggering); nothing was "
            f"processed. Trigger {meant} from the UI or the REST API with logical date "
            f"{meant}, or with `airflow backfill create --from-date {meant} --to-date "
            f"{meant}`")
    if named is not None and named != day:
        shown = f"{logical:%Y-%m-%d}" if logical is not None else day
        raise RunDateRefused(
            f"param delivery_day {named} differs from this run's delivery day {day} "
            f"(logical date {shown}); nothing was processed. To process {named}, trigger "
            f"a run with logical date {named} and leave delivery_day empty")
    return day


def _named_day(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise RunDateRefused(f"param delivery_day {value!r} is not a date (YYYY-MM-DD)"
                             ) from exc


def refuse_future(day: dt.date, now: dt.datetime) -> None:
    """Refuse a run for a day after today (Danish date): its extract cannot exist yet,
    and a sensor waiting for it would hold the DAG's only active-run slot for days."""
    today = local_today(now)
    if day > today:
        raise RunDateRefused(
            f"delivery day {day} is in the future (today is {today} in Denmark): its "
            f"extract cannot have arrived. The schedule creates its run; for a manual run, "
            f"trigger it on or after {day}")

"""The delivery-day timetable, called directly, and driven by Airflow's backfill."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction

from cpr_timetable import CprDeliveryTimetable

UTC = pendulum.UTC


def day(d: dt.date) -> pendulum.DateTime:
    return pendulum.datetime(d.year, d.month, d.day, tz=UTC)


def runs(tt: CprDeliveryTimetable, first: dt.date, last: dt.date) -> list[dt.date]:
    """Every run between two dates, as a backfill asks for them."""
    out, prev = [], None
    restriction = TimeRestriction(earliest=day(first), latest=day(last), catchup=True)
    for _ in range(400):
        info = tt.next_dagrun_info(last_automated_data_interval=prev, restriction=restriction)
        if info is None:
            return out
        out.append(info.logical_date.date())
        prev = info.data_interval
    raise AssertionError("the loop did not end")


def test_weekends_and_closures():
    tt = CprDeliveryTimetable()
    got = runs(tt, dt.date(2027, 6, 1), dt.date(2027, 6, 10))
    # 5 June 2027 is a Saturday; in 2026 it was a Friday:
    assert got == [dt.date(2027, 6, d) for d in (1, 2, 3, 4, 7, 8, 9, 10)]
    got = runs(tt, dt.date(2026, 6, 3), dt.date(2026, 6, 9))
    assert got == [dt.date(2026, 6, d) for d in (3, 4, 8, 9)]  # Fri 5th closed


def test_christmas_new_year():
    got = runs(CprDeliveryTimetable(), dt.date(2026, 12, 22), dt.date(2027, 1, 5))
    assert got == [dt.date(2026, 12, 22), dt.date(2026, 12, 23), dt.date(2026, 12, 25),
                   dt.date(2026, 12, 28), dt.date(2026, 12, 29), dt.date(2026, 12, 30),
                   dt.date(2027, 1, 1), dt.date(2027, 1, 4), dt.date(2027, 1, 5)]


def test_extra_closures_are_data_and_survive_serialization():
    tt = CprDeliveryTimetable(at="20:30", extra_closures=["2027-01-01", "--12-25"])
    got = runs(tt, dt.date(2026, 12, 22), dt.date(2027, 1, 5))
    assert dt.date(2027, 1, 1) not in got and dt.date(2026, 12, 25) not in got
    data = tt.serialize()
    assert data == {"at": "20:30", "timezone": "Europe/Copenhagen",
                    "closures": ["--06-05", "--12-24", "--12-25", "--12-31", "2027-01-01"]}
    back = CprDeliveryTimetable.deserialize(data)
    assert back.serialize() == data
    assert runs(back, dt.date(2026, 12, 22), dt.date(2027, 1, 5)) == got
    assert back.summary == ("Mon–Fri except 5 June, 24, 25 and 31 December and 1 January "
                            "2027, at 20:30 Europe/Copenhagen")


def test_the_schedule_reads_like_a_sentence():
    """Issue 14, item 5: the DAG list's schedule and its tooltip name the days in words,
    not ``--06-05``."""
    tt = CprDeliveryTimetable()
    assert tt.summary == "Mon–Fri except 5 June, 24 and 31 December, at 21:00 Europe/Copenhagen"
    assert tt.description == ("CPR delivery days: Monday to Friday except 5 June, 24 and 31 "
                              "December, at 21:00 Danish time (Europe/Copenhagen)")
    many = CprDeliveryTimetable(extra_closures=[f"2027-05-{d:02d}" for d in range(3, 8)])
    assert "--" not in many.summary and "--" not in many.description
    assert many.summary == ("Mon–Fri except 5 June, 24 and 31 December and 5 other closed "
                            "days, at 21:00 Europe/Copenhagen")
    assert "and 3, 4, 5, 6 and 7 May 2027" in many.description


@pytest.mark.parametrize(("d", "utc_hour"), [
    (dt.date(2026, 3, 27), 20),  # Friday before summer time: 21:00 CET = 20:00Z
    (dt.date(2026, 3, 30), 19),  # Monday after: 21:00 CEST = 19:00Z
    (dt.date(2026, 10, 23), 19),
    (dt.date(2026, 10, 26), 20),  # after the return to winter time
])
def test_run_time_is_local_and_dst_correct(d, utc_hour):
    tt = CprDeliveryTimetable()
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=TimeRestriction(
        earliest=day(d), latest=None, catchup=True))
    assert info.logical_date == day(d)
    assert info.data_interval == DataInterval(day(d), day(d + dt.timedelta(days=1)))
    assert info.run_after.in_timezone(UTC).hour == utc_hour
    assert info.run_after.in_timezone("Europe/Copenhagen").hour == 21


def test_manual_runs_map_to_the_delivery_day_on_or_before():
    tt = CprDeliveryTimetable()
    sunday = pendulum.datetime(2026, 11, 29, 10, tz=UTC)
    assert tt.infer_manual_data_interval(run_after=sunday).start == day(dt.date(2026, 11, 27))
    thursday = pendulum.datetime(2026, 11, 26, tz=UTC)
    assert tt.infer_manual_data_interval(run_after=thursday).start == thursday


def test_without_catchup_the_first_run_is_the_latest_due_day():
    tt = CprDeliveryTimetable()
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=TimeRestriction(
        earliest=day(dt.date(2026, 1, 1)), latest=None, catchup=False))
    due = tt.latest_due(pendulum.now(UTC))
    assert info.logical_date.date() == due
    assert tt.run_after(due) <= pendulum.now(UTC)


def test_no_start_date_means_no_runs():
    tt = CprDeliveryTimetable()
    assert tt.next_dagrun_info(last_automated_data_interval=None, restriction=TimeRestriction(
        earliest=None, latest=None, catchup=True)) is None


def test_backfill_dry_run_through_airflow(airflow_db):
    airflow = str(Path(sys.executable).parent / "airflow")
    env = dict(os.environ)
    subprocess.run([airflow, "dags", "reserialize"], check=True, capture_output=True, env=env)
    out = subprocess.run(
        [airflow, "backfill", "create", "--dag-id", "cpr_abonnement_daily",
         "--from-date", "2025-12-20", "--to-date", "2026-01-05", "--dry-run"],
        capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    listed = out.stdout.split("Runs to be attempted")[1]
    dates = re.findall(r"(\d{4}-\d{2}-\d{2})[T ]00:00:00\+00:00", listed)
    assert dates == ["2025-12-22", "2025-12-23", "2025-12-25", "2025-12-26", "2025-12-29",
                     "2025-12-30", "2026-01-01", "2026-01-02", "2026-01-05"], out.stdout


def test_manual_run_named_in_danish_time():
    tt = CprDeliveryTimetable()
    cph_midnight = pendulum.datetime(2026, 11, 24, tz="Europe/Copenhagen")  # 23 Nov 23:00Z
    assert tt.infer_manual_data_interval(run_after=cph_midnight).start == day(
        dt.date(2026, 11, 24))


def _scheduled(last: dt.date | None, *, catchup: bool) -> dt.date:
    """The next run the scheduler would create after an automated run for ``last``."""
    tt = CprDeliveryTimetable()
    info = tt.next_dagrun_info(
        last_automated_data_interval=None if last is None else tt.interval(last),
        restriction=TimeRestriction(earliest=day(dt.date(2025, 1, 1)), latest=None,
                                    catchup=catchup))
    return info.logical_date.date()


@pytest.mark.parametrize("last", [
    dt.date(2025, 12, 29),  # the last day of a UI backfill of 19-29 Dec 2025
    "outage",               # the scheduler was down for two weeks
])
def test_without_catchup_a_last_run_long_ago_skips_to_the_latest_due_day(last):
    tt = CprDeliveryTimetable()
    due = tt.latest_due(pendulum.now(UTC))
    if last == "outage":
        last = due - dt.timedelta(days=14)
        last = last if tt.calendar.is_delivery_day(last) else tt.calendar.previous_delivery_day(
            last)
    assert _scheduled(last, catchup=False) == due
    # A backfill (catchup=True) still walks every delivery day from there:
    assert _scheduled(last, catchup=True) == tt.calendar.next_delivery_day(last)


def test_without_catchup_the_run_after_the_latest_due_day_is_the_next_delivery_day():
    tt = CprDeliveryTimetable()
    due = tt.latest_due(pendulum.now(UTC))
    nxt = _scheduled(due, catchup=False)
    assert nxt == tt.calendar.next_delivery_day(due)
    assert tt.run_after(nxt) > pendulum.now(UTC)  # not due yet: the scheduler waits

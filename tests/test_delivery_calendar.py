"""The delivery calendar as data: closures, neighbours, extra dates, bad data."""

from __future__ import annotations

import datetime as dt

import pytest

from cpr_abonnement.delivery_calendar import CalendarDataError, DeliveryCalendar

D = dt.date


@pytest.mark.parametrize(("day", "delivers"), [
    (D(2026, 11, 26), True),    # Thursday
    (D(2026, 11, 28), False),   # Saturday
    (D(2026, 11, 29), False),   # Sunday
    (D(2026, 6, 5), False),     # Friday, Constitution Day
    (D(2026, 12, 24), False),   # Thursday
    (D(2026, 12, 31), False),   # Thursday
    (D(2027, 1, 1), True),      # Friday: New Year's Day is not a CPR closure (§5)
    (D(2028, 6, 5), False),     # Monday
])
def test_default_closures(day, delivers):
    assert DeliveryCalendar.default().is_delivery_day(day) is delivers


def test_neighbours_and_ranges():
    cal = DeliveryCalendar.default()
    assert cal.previous_delivery_day(D(2027, 1, 1)) == D(2026, 12, 30)
    assert cal.next_delivery_day(D(2026, 12, 23)) == D(2026, 12, 25)
    assert list(cal.delivery_days(D(2026, 12, 24), D(2027, 1, 4))) == [
        D(2026, 12, 25), D(2026, 12, 28), D(2026, 12, 29), D(2026, 12, 30), D(2027, 1, 1),
        D(2027, 1, 4)]


def test_extra_closures_round_trip():
    cal = DeliveryCalendar.default(extra=["2027-01-01", "--05-01"])
    assert not cal.is_delivery_day(D(2027, 1, 1)) and not cal.is_delivery_day(D(2026, 5, 1))
    assert DeliveryCalendar.parse(cal.entries()) == cal
    assert cal.entries() == ["--05-01", "--06-05", "--12-24", "--12-31", "2027-01-01"]


def test_bad_or_missing_data_raises(tmp_path):
    with pytest.raises(CalendarDataError, match="neither --MM-DD nor YYYY-MM-DD"):
        DeliveryCalendar.parse(["--13-01"])
    with pytest.raises(CalendarDataError, match="does not exist"):
        DeliveryCalendar.from_file(tmp_path / "nope.csv")
    f = tmp_path / "c.csv"
    f.write_text("when,reason\n--05-01,Labour Day\n2027-03-25,Skærtorsdag\n", encoding="utf-8")
    assert DeliveryCalendar.from_file(f).entries() == ["--05-01", "2027-03-25"]


# -- run times: one rule for the timetable, the sensor's deadline and health (issue 11) --
def test_run_time_is_the_timetable_run_after_every_day_even_across_dst():
    """The timetable (pendulum) and health/deadline (zoneinfo) used to compute the run
    time separately and disagreed for a time the autumn clock shows twice."""
    import pendulum

    from cpr_abonnement.delivery_calendar import run_time
    from cpr_timetable import CprDeliveryTimetable

    for at in ("21:00", "02:30", "00:00"):
        tt = CprDeliveryTimetable(at=at)
        day = dt.date(2026, 1, 1)
        while day.year == 2026:
            # by instant: == between zones is False for a twice-shown time (PEP 495)
            assert run_time(day, at).timestamp() == tt.run_after(day).timestamp(), (day, at)
            day += dt.timedelta(days=1)
    autumn = run_time(dt.date(2026, 10, 25), "02:30")  # 02:30 happens twice: the later
    assert autumn.astimezone(dt.UTC) == dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)
    assert pendulum.instance(autumn).in_timezone("UTC").hour == 1


def test_latest_due_with_and_without_grace():
    from cpr_abonnement.delivery_calendar import extract_deadline, local_today

    cal = DeliveryCalendar.default()
    thursday_2130 = dt.datetime(2026, 11, 26, 20, 30, tzinfo=dt.UTC)  # 21:30 in Denmark
    assert cal.latest_due(thursday_2130, "21:00") == dt.date(2026, 11, 26)
    assert cal.latest_due(thursday_2130, "22:00") == dt.date(2026, 11, 25)
    # Friday 01:00 with 8 h grace: Thursday 21:00 + 8 h is not yet past
    friday_0100 = dt.datetime(2026, 11, 27, 0, 0, tzinfo=dt.UTC)
    assert cal.latest_due(friday_0100, "21:00", grace=dt.timedelta(hours=8)) == dt.date(
        2026, 11, 25)
    assert extract_deadline(dt.date(2026, 11, 26), "21:00", 6).astimezone(dt.UTC) == (
        dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC))
    assert local_today(dt.datetime(2026, 11, 26, 23, 30, tzinfo=dt.UTC)) == dt.date(
        2026, 11, 27)

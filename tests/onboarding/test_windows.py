"""Service windows: parsing, canonical text, and when a window covering a moment ends
(Danish time, across midnight, daylight saving, chained windows)."""

from __future__ import annotations

import datetime as dt

import pytest

from cpr_abonnement.errors import InvalidServiceWindow
from cpr_abonnement.onboarding.windows import TZ, ServiceWindow, parse_all, window_end


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


@pytest.mark.parametrize(("text", "canonical"), [
    ("Saturdays 22:00–06:00", "Saturdays 22:00-06:00"),
    ("saturday 22:00 - 06:00", "Saturdays 22:00-06:00"),
    ("First Tuesday of the month 18:00-23:00", "first Tuesday of the month 18:00-23:00"),
    ("last friday of the month 1:30-2:00", "last Friday of the month 01:30-02:00"),
    ("every day 01:00-02:00", "daily 01:00-02:00"),
])
def test_canonical_text(text, canonical):
    assert str(ServiceWindow.parse(text)) == canonical
    assert str(ServiceWindow.parse(canonical)) == canonical


@pytest.mark.parametrize("text", ["Saturdays", "Funday 01:00-02:00", "daily 24:00-01:00",
                                  "daily 01:00-01:00", "fifth Monday of the month 1:00-2:00",
                                  "Saturdays 22-06"])
def test_refused(text):
    with pytest.raises(InvalidServiceWindow):
        ServiceWindow.parse(text)


def test_saturday_night_runs_into_sunday():
    (w,) = parse_all(["Saturdays 22:00-06:00"])
    assert window_end([w], local(2026, 11, 28, 23, 0)) == local(2026, 11, 29, 6, 0)
    assert window_end([w], local(2026, 11, 29, 5, 59)) == local(2026, 11, 29, 6, 0)
    assert window_end([w], local(2026, 11, 29, 6, 0)) is None  # the end is outside
    assert window_end([w], local(2026, 11, 28, 21, 59)) is None
    assert window_end([w], local(2026, 11, 27, 23, 0)) is None  # a Friday


def test_first_and_last_weekday_of_the_month():
    first = ServiceWindow.parse("first Tuesday of the month 18:00-23:00")
    last = ServiceWindow.parse("last Tuesday of the month 18:00-23:00")
    assert window_end([first], local(2026, 12, 1, 19, 0)) == local(2026, 12, 1, 23, 0)
    assert window_end([first], local(2026, 12, 8, 19, 0)) is None
    assert window_end([last], local(2026, 12, 29, 19, 0)) == local(2026, 12, 29, 23, 0)
    assert window_end([last], local(2026, 12, 22, 19, 0)) is None


def test_utc_moment_judged_in_danish_time_and_chained_windows():
    windows = parse_all(["Saturdays 22:00-06:00", "Sundays 05:00-07:30"])
    now = dt.datetime(2026, 11, 28, 21, 30, tzinfo=dt.UTC)  # 22:30 in Copenhagen (CET)
    assert window_end(windows, now) == local(2026, 11, 29, 7, 30)
    summer = dt.datetime(2026, 6, 20, 20, 30, tzinfo=dt.UTC)  # 22:30 CEST, a Saturday
    assert window_end(windows, summer) == local(2026, 6, 21, 7, 30)

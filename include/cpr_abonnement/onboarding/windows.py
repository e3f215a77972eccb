"""Service windows of a subscriber's SFTP server: when it is down for maintenance.

The registration form (NOT0314) asks for the fixed service windows of the IT system's
SFTP server; a push delivery due inside one waits until the window ends instead of
failing against a server that is down. A window is written the way people write them,
in Danish time (Europe/Copenhagen, daylight saving included)::

    daily 01:00-02:00
    Saturdays 22:00-06:00                      (ends on Sunday at 06:00)
    first Tuesday of the month 18:00-23:00     (first, second, third, fourth, last)

An end at or before the start means the window runs past midnight into the next day.
En and em dashes are read as hyphens. :func:`ServiceWindow.parse` refuses anything else
with :class:`~cpr_abonnement.errors.InvalidServiceWindow` saying what it expected;
``str(window)`` is the canonical text (what ``cprsub subscriber show`` prints).
Pure: no clock is read here, callers pass ``now``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from cpr_abonnement.errors import InvalidServiceWindow

#: The time zone service windows are written in.
TZ = ZoneInfo("Europe/Copenhagen")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ORDINALS = ("first", "second", "third", "fourth", "last")
#: How many back-to-back windows are followed when one ends inside another.
_MAX_CHAIN = 16
_SHAPE = re.compile(
    r"(?:(?P<daily>daily|every day)"
    r"|(?P<ordinal>first|second|third|fourth|last) (?P<mday>[a-z]+) of the month"
    r"|(?P<wday>[a-z]+?)s?)"
    r" (?P<start>\d{1,2}:\d{2}) ?- ?(?P<end>\d{1,2}:\d{2})")
_EXPECTED = ("a service window is '<day(s)> HH:MM-HH:MM' in Danish time: 'daily 01:00-02:00', "
             "'Saturdays 22:00-06:00' or 'first Tuesday of the month 18:00-23:00'")


def _clock(text: str, window: str) -> dt.time:
    hours, minutes = (int(p) for p in text.split(":"))
    if hours > 23 or minutes > 59:
        raise InvalidServiceWindow(f"{window!r}: {text} is not a time of day (00:00-23:59)")
    return dt.time(hours, minutes)


def _weekday(name: str, window: str) -> int:
    if name not in DAYS:
        raise InvalidServiceWindow(f"{window!r}: {name!r} is not a weekday; {_EXPECTED}")
    return DAYS.index(name)


@dataclass(frozen=True)
class ServiceWindow:
    """One recurring window: on which days it starts, from ``start`` to ``end`` local time.

    ``weekday`` None means every day; ``ordinal`` (1-4, or -1 for the last) narrows a
    weekday to one occurrence in the month.
    """

    start: dt.time
    end: dt.time
    weekday: int | None = None
    ordinal: int | None = None

    @classmethod
    def parse(cls, text: str) -> ServiceWindow:
        window = str(text).strip()
        normal = re.sub(r"\s+", " ", window.replace("–", "-").replace("—", "-")).lower()
        m = _SHAPE.fullmatch(normal)
        if m is None:
            raise InvalidServiceWindow(f"{window[:80]!r} is not understood: {_EXPECTED}")
        start, end = _clock(m["start"], window), _clock(m["end"], window)
        if start == end:
            raise InvalidServiceWindow(f"{window!r}: a window cannot start and end at the "
                                       "same time")
        if m["daily"]:
            return cls(start, end)
        if m["ordinal"]:
            index = ORDINALS.index(m["ordinal"])
            return cls(start, end, _weekday(m["mday"], window),
                       -1 if index == len(ORDINALS) - 1 else index + 1)
        return cls(start, end, _weekday(m["wday"], window))

    def __str__(self) -> str:
        hours = f"{self.start:%H:%M}-{self.end:%H:%M}"
        if self.weekday is None:
            return f"daily {hours}"
        day = DAYS[self.weekday].capitalize()
        if self.ordinal is None:
            return f"{day}s {hours}"
        ordinal = ORDINALS[-1] if self.ordinal == -1 else ORDINALS[self.ordinal - 1]
        return f"{ordinal} {day} of the month {hours}"

    def starts_on(self, day: dt.date) -> bool:
        """Whether an occurrence of this window starts on local date ``day``."""
        if self.weekday is None:
            return True
        if day.weekday() != self.weekday:
            return False
        if self.ordinal is None:
            return True
        if self.ordinal == -1:
            return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
        return (day.day - 1) // 7 + 1 == self.ordinal

    def occurrence(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The occurrence starting on local date ``day`` (aware, Danish time), if any."""
        if not self.starts_on(day):
            return None
        ends_on = day if self.end > self.start else day + dt.timedelta(days=1)
        return (dt.datetime.combine(day, self.start, TZ),
                dt.datetime.combine(ends_on, self.end, TZ))

    def open_until(self, now: dt.datetime) -> dt.datetime | None:
        """When the occurrence ``now`` falls in ends, or None when outside this window."""
        local = now.astimezone(TZ)
        for day in (local.date() - dt.timedelta(days=1), local.date()):
            span = self.occurrence(day)
            if span and span[0] <= local < span[1]:
                return span[1]
        return None


def parse_all(texts: Iterable[str]) -> tuple[ServiceWindow, ...]:
    """Every window of a registration, canonical duplicates dropped, order kept."""
    return tuple({str(w): w for w in map(ServiceWindow.parse, texts)}.values())


def window_end(windows: Iterable[ServiceWindow], now: dt.datetime) -> dt.datetime | None:
    """When the service windows covering ``now`` (aware) are over, or None if none does.

    A window that ends inside another one (Saturday night into a daily maintenance
    hour) is followed to the later end, so the delivery does not wake up into the next.
    """
    windows = tuple(windows)
    until = None
    for _ in range(_MAX_CHAIN):
        ends = [e for w in windows if (e := w.open_until(until or now)) is not None]
        if not ends:
            return until
        until = max(ends)
    return until

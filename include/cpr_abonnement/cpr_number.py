"""CPR numbers (personnummer, PNR): validation, birth date, masking.

A PNR is ten digits ``DDMMYYSSSS``: birth day, month and two-digit year, then a
four-digit serial number whose first digit (the 7th of the PNR) together with ``YY``
fixes the century (``cpr-format.md`` §4.2, agreeing with cpr.dk, da.wikipedia and
python-stdnum's ``stdnum/dk/cpr.py``):

============  ========  ========  ========
digit 7       YY 00-36  YY 37-57  YY 58-99
============  ========  ========  ========
0, 1, 2, 3    1900s     1900s     1900s
4, 9          2000s     1900s     1900s
5, 6, 7, 8    2000s     2000s     1800s
============  ========  ========  ========

The modulus-11 check digit is deliberately **not** checked: CPR stopped guaranteeing
it on 1 October 2007 when the numbers for some birth dates ran out, so a checksum
test would reject real people. A number is valid when it is ten digits and its first
six digits form a real calendar date in the century the 7th digit gives.

>>> validate('010190-1234')
'0101901234'
>>> birth_date('0101901234')
datetime.date(1990, 1, 1)
>>> birth_date('3012995007')   # digit 7 = 5 with YY 99: the 1800s
datetime.date(1899, 12, 30)
>>> birth_date('0101204001')   # digit 7 = 4 with YY 20: the 2000s
datetime.date(2020, 1, 1)
>>> mask('0101901234')
'010190-****'
>>> is_valid('3102901234')     # 31 February
False
>>> is_valid('0101901230')     # fails modulus 11, still a valid PNR
True
"""

from __future__ import annotations

import bisect
import datetime as dt
import re

from cpr_abonnement.errors import InvalidPnr
from cpr_abonnement.masking import compact, mask, scrub

__all__ = ["CENTURY", "YY_BAND_LIMITS", "age_on", "birth_date", "birth_year", "compact",
           "is_valid", "mask", "scrub", "validate", "yy_band"]

#: The last two-digit year of each YY band but the last: 0 = 00-36, 1 = 37-57, 2 = 58-99.
#: The scanner's vectorised rule reads the same limits (``np.searchsorted``).
YY_BAND_LIMITS = (36, 57)
#: Century by (7th digit, YY band).
CENTURY: dict[int, tuple[int, int, int]] = {
    0: (1900, 1900, 1900),
    1: (1900, 1900, 1900),
    2: (1900, 1900, 1900),
    3: (1900, 1900, 1900),
    4: (2000, 1900, 1900),
    9: (2000, 1900, 1900),
    5: (2000, 2000, 1800),
    6: (2000, 2000, 1800),
    7: (2000, 2000, 1800),
    8: (2000, 2000, 1800),
}


_TEN_DIGITS = re.compile(r"[0-9]{10}")


def yy_band(yy: int) -> int:
    """Column of :data:`CENTURY` for a two-digit year."""
    return bisect.bisect_left(YY_BAND_LIMITS, yy)


def birth_year(number: str) -> int:
    """Four-digit birth year by the century rule (no date check)."""
    yy = int(number[4:6])
    return CENTURY[int(number[6])][yy_band(yy)] + yy


def birth_date(number: str) -> dt.date:
    """Birth date encoded in the PNR; raises :class:`InvalidPnr` if it is no date."""
    number = compact(number)
    if not _TEN_DIGITS.fullmatch(number):  # ASCII only: str.isdigit() accepts '²'
        raise InvalidPnr(f"PNR {mask(number)} is not 10 digits")
    try:
        return dt.date(birth_year(number), int(number[2:4]), int(number[0:2]))
    except ValueError:
        raise InvalidPnr(
            f"PNR {mask(number)}: the first six digits are not a real date (DDMMYY)"
        ) from None


def validate(number: str) -> str:
    """Return the compact PNR, or raise :class:`InvalidPnr` naming the broken rule."""
    number = compact(number)
    birth_date(number)
    return number


def is_valid(number: str) -> bool:
    """Whether :func:`validate` accepts the number."""
    try:
        validate(number)
    except InvalidPnr:
        return False
    return True


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years on ``day``.

    A person born 29 February becomes a year older on 1 March in non-leap years,
    which is what comparing (month, day) tuples gives.

    >>> leap = dt.date(2000, 2, 29)
    >>> age_on(leap, dt.date(2023, 2, 28)), age_on(leap, dt.date(2023, 3, 1))
    (22, 23)
    """
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))

"""Date rules over arrays: real calendar dates and the PNR's century rule, vectorised.

The century bands and centuries are :mod:`cpr_abonnement.cpr_number`'s tables; this module
only applies them to many numbers at once.
"""

from __future__ import annotations

import numpy as np

from cpr_abonnement.cpr_number import CENTURY, YY_BAND_LIMITS

_CENTURY = np.array([CENTURY[d] for d in range(10)], dtype=np.int64)  # [digit7, yy band]
_YY_BAND_LIMITS = np.array(YY_BAND_LIMITS, dtype=np.int64)


_DAYS_IN_MONTH = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def real_dates(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Whether each (y, m, d) is a calendar date (partial dates with month or day 00 are
    not, ``cpr-format.md`` §5).

    The leap-year rule, three integer divisions per row, is applied to 29 February only.
    """
    ok = (y >= 1) & (m <= 12) & (d >= 1) & (d <= _DAYS_IN_MONTH[np.clip(m, 0, 12)])
    feb29 = np.flatnonzero(ok & (m == 2) & (d == 29))
    year = y[feb29]
    ok[feb29] = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return ok


def birth_from_pnr(pnr: np.ndarray) -> np.ndarray:
    """Vectorised century rule (``cpr-format.md`` §4.2): ``YYYYMMDD`` or 0 if no date."""
    day, month = pnr // 100_000_000, pnr // 1_000_000 % 100
    yy, digit7 = pnr // 10_000 % 100, pnr // 1_000 % 10
    band = np.searchsorted(_YY_BAND_LIMITS, yy, side="left")
    year = _CENTURY[digit7, band] + yy
    return np.where(real_dates(year, month, day), year * 10_000 + month * 100 + day, 0)

"""PNR rules: the century table for every 7th digit, dates, masking, no modulus 11."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from cpr_abonnement.cpr_number import age_on, birth_date, is_valid, mask, validate
from cpr_abonnement.errors import InvalidPnr
from cpr_abonnement.extract.dates import birth_from_pnr

CASES = [  # (pnr, birth date) covering every digit-7 value and YY band
    ("0101000000", dt.date(1900, 1, 1)), ("0101361000", dt.date(1936, 1, 1)),
    ("0101372000", dt.date(1937, 1, 1)), ("0101993000", dt.date(1999, 1, 1)),
    ("0101364000", dt.date(2036, 1, 1)), ("0101374000", dt.date(1937, 1, 1)),
    ("0101369000", dt.date(2036, 1, 1)), ("0101579000", dt.date(1957, 1, 1)),
    ("0101575000", dt.date(2057, 1, 1)), ("0101586000", dt.date(1858, 1, 1)),
    ("0101997000", dt.date(1899, 1, 1)), ("0101008000", dt.date(2000, 1, 1)),
    ("3012995007", dt.date(1899, 12, 30)), ("0101965058", dt.date(1896, 1, 1)),
]


@pytest.mark.parametrize(("pnr", "born"), CASES)
def test_century_rule(pnr, born):
    assert birth_date(pnr) == born
    value = birth_from_pnr(np.array([int(pnr)], dtype=np.int64))[0]
    assert value == int(born.strftime("%Y%m%d"))


@pytest.mark.parametrize("pnr", ["2902001234", "2902004234"])
def test_leap_day_depends_on_century(pnr):
    # 29 Feb 1900 does not exist (digit 7 = 1 -> 1900); 2000 is a leap year (digit 7 = 4).
    assert is_valid(pnr) == (pnr[6] == "4")


@pytest.mark.parametrize("bad", ["3102901234", "0013901234", "010190123", "01019012345",
                                 "01019O1234", "010190123²", "０１０１９０１２３４", ""])
def test_invalid_pnrs_are_rejected_without_leaking_digits(bad):
    with pytest.raises(InvalidPnr) as exc:
        validate(bad)
    assert bad[6:] not in str(exc.value) or len(bad) < 7


def test_modulus_11_is_never_checked():
    assert is_valid("0101901230") and is_valid("0101901231")


def test_separators_are_accepted():
    assert validate("010190-1234") == "0101901234"


def test_mask():
    assert mask("0101901234") == "010190-****"
    assert mask("garbage") == "****"


@pytest.mark.parametrize(("born", "day", "age"), [
    (dt.date(2000, 2, 29), dt.date(2023, 2, 28), 22),
    (dt.date(2000, 2, 29), dt.date(2023, 3, 1), 23),
    (dt.date(2000, 2, 29), dt.date(2024, 2, 29), 24),
    (dt.date(1990, 11, 26), dt.date(2026, 11, 26), 36),
    (dt.date(1990, 11, 27), dt.date(2026, 11, 26), 35),
])
def test_age_in_completed_years(born, day, age):
    assert age_on(born, day) == age


def test_the_scanners_century_rule_is_the_same_rule():
    """Every (7th digit, two-digit year): the vectorised rule the scanner uses and the
    scalar one agree, since both read pnr.CENTURY and pnr.YY_BAND_LIMITS."""
    numbers = [f"0101{yy:02d}{d7}000" for yy in range(100) for d7 in range(10)]
    vectorised = birth_from_pnr(np.array([int(n) for n in numbers], dtype=np.int64))
    scalar = [int(birth_date(n).strftime("%Y%m%d")) for n in numbers]
    assert vectorised.tolist() == scalar

"""Input rules of the subscription operations (product.md §2), as pure functions.

Each function returns the normalised value or raises the
:class:`~cpr_abonnement.errors.FilterInputError` subclass naming the rule, so the CLI,
the service and the REST API reject bad input with the same words.

>>> municipality_code("851")
'0851'
>>> event_code("a01")
'A01'
>>> age_range(0, 999)
(0, 999)
"""

from __future__ import annotations

import re
from enum import StrEnum

from cpr_abonnement import pnr as pnr_rules
from cpr_abonnement.errors import (
    InvalidAgeRange,
    InvalidEventCode,
    InvalidFilterGroup,
    InvalidMunicipalityCode,
    InvalidPnr,
    InvalidPnrInput,
)
from cpr_abonnement.reference import event_codes

MAX_AGE = 999
_EVENT = re.compile(r"[A-Z][0-9]{2}")
_MUNICIPALITY = re.compile(r"[0-9]{1,4}")


class FilterGroup(StrEnum):
    """The groups RemoveAll accepts, spelled as the reference service spells them."""

    PNR = "PNR"
    AGE_RANGE = "AgeRange"
    MUNICIPALITY_CODE = "MunicipalityCode"
    CHANGE_CODE = "ChangeCode"


def pnr(value: str) -> str:
    """10 digits whose first six are a real date; never a modulus-11 check."""
    try:
        return pnr_rules.validate(str(value))
    except InvalidPnr as exc:
        raise InvalidPnrInput(str(exc)) from None


def age_range(start: object, end: object) -> tuple[int, int]:
    """Whole years 0-999 with StartAge <= EndAge."""
    ages = []
    for label, value in (("StartAge", start), ("EndAge", end)):
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str)
                                       and re.fullmatch(r"[0-9]+", value.strip()))
        ):
            raise InvalidAgeRange(f"{label} {value!r} is not a whole number of years")
        number = int(value)
        if not 0 <= number <= MAX_AGE:
            raise InvalidAgeRange(f"{label} {number} is outside 0-{MAX_AGE}")
        ages.append(number)
    if ages[0] > ages[1]:
        raise InvalidAgeRange(f"StartAge {ages[0]} is greater than EndAge {ages[1]}")
    return ages[0], ages[1]


def municipality_code(value: object) -> str:
    """1-4 digits, returned zero-padded to 4 (``851`` -> ``0851``)."""
    text = str(value).strip()
    if not _MUNICIPALITY.fullmatch(text):
        raise InvalidMunicipalityCode(f"municipality code {text!r} is not 1-4 digits")
    return text.zfill(4)


def event_code(value: object) -> str:
    """One letter and two digits (upper-cased)."""
    text = str(value).strip().upper()
    if not _EVENT.fullmatch(text):
        raise InvalidEventCode(
            f"event code {text!r} is not one letter followed by two digits (e.g. A01)"
        )
    return text


def event_code_warning(code: str) -> str | None:
    """A warning for codes missing from the known list (accepted: the set is open)."""
    if code in event_codes():
        return None
    return (f"event code {code} is not in the known list of CPR event codes; accepted, "
            "since CPR adds codes over time")


def filter_group(value: str) -> FilterGroup:
    try:
        return FilterGroup(value)
    except ValueError:
        allowed = ", ".join(g.value for g in FilterGroup)
        raise InvalidFilterGroup(f"filter group {value!r} is not one of {allowed}") from None

"""Input rules of the subscription operations (product.md §2), as pure functions.

Each function returns the normalised value or raises the
:class:`~cpr_abonnement.errors.FilterInputError` subclass naming the rule, so the CLI,
the service and the REST API reject bad input with the same words. A rejected value
is quoted in the message only through :func:`shown`, which masks anything shaped like
a PNR: a PNR typed into the wrong field must not reach a response, log or audit row.

>>> municipality_code("851")
'0851'
>>> event_code("a01")
'A01'
>>> age_range(0, 999)
(0, 999)
>>> remote_dir("./cpr//in/")
'cpr/in'
"""

from __future__ import annotations

import posixpath
import re
from enum import StrEnum

from cpr_abonnement import pnr as pnr_rules
from cpr_abonnement.errors import (
    FilterInputError,
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
#: C0 controls (NUL included), DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: The column's width (``subscriber.remote_dir``).
MAX_REMOTE_DIR = 500


class InvalidRemoteDir(FilterInputError):
    """A subscriber's remote directory must stay inside the folder the SFTP login sees."""

    rule = "remote dir"


def shown(value: object) -> str:
    """``repr(value)`` with anything shaped like a PNR masked, for error messages.

    >>> shown("0101901234"), shown(1502504321), shown("A1")
    ("'010190-****'", '150250-****', "'A1'")
    """
    return pnr_rules.scrub(repr(value))


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
            raise InvalidAgeRange(f"{label} {shown(value)} is not a whole number of years")
        number = int(value)
        if not 0 <= number <= MAX_AGE:
            raise InvalidAgeRange(f"{label} {shown(number)} is outside 0-{MAX_AGE}")
        ages.append(number)
    if ages[0] > ages[1]:
        raise InvalidAgeRange(f"StartAge {ages[0]} is greater than EndAge {ages[1]}")
    return ages[0], ages[1]


def municipality_code(value: object) -> str:
    """1-4 digits, returned zero-padded to 4 (``851`` -> ``0851``)."""
    text = str(value).strip()
    if not _MUNICIPALITY.fullmatch(text):
        raise InvalidMunicipalityCode(
            f"municipality code {shown(text)} is not 1-4 digits")
    return text.zfill(4)


def event_code(value: object) -> str:
    """One letter and two digits (upper-cased)."""
    text = str(value).strip().upper()
    if not _EVENT.fullmatch(text):
        raise InvalidEventCode(
            f"event code {shown(text)} is not one letter followed by two digits (e.g. A01)"
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
        raise InvalidFilterGroup(
            f"filter group {shown(value)} is not one of {allowed}") from None


def remote_dir(value: str) -> str:
    """The subscriber's delivery directory, normalised; it may not climb out of its folder.

    The rule: no ``..`` segment at all (before or after normalisation, so
    ``in/../../x`` and ``/cpr/../etc`` are refused alike), no backslash (a Windows
    SFTP server takes it for a separator, so ``..\\x`` would climb too), no control
    character (NUL ends a C path early), at most 500 characters. An absolute path is
    allowed: it names a folder of the SFTP account's own view, which the server's
    chroot bounds. ``""`` means the login folder, ``"."``.

    >>> remote_dir("/6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001/in")
    '/6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001/in'
    >>> remote_dir("../other")
    Traceback (most recent call last):
    ...
    cpr_abonnement.subscriptions.rules.InvalidRemoteDir: remote dir '../other' has a '..' \
segment; it must stay inside the subscriber's folder
    """
    text = str(value)
    if _CONTROL.search(text):
        raise InvalidRemoteDir(f"remote dir {shown(text)} contains a control character")
    if "\\" in text:
        raise InvalidRemoteDir(f"remote dir {shown(text)} contains a backslash; use '/'")
    if len(text) > MAX_REMOTE_DIR:
        raise InvalidRemoteDir(f"remote dir is longer than {MAX_REMOTE_DIR} characters")
    normal = posixpath.normpath(text) if text else "."
    if ".." in text.split("/") or ".." in normal.split("/"):
        raise InvalidRemoteDir(f"remote dir {shown(text)} has a '..' segment; it must stay "
                               "inside the subscriber's folder")
    return "/" + normal.lstrip("/") if normal.startswith("/") else normal

"""Input rules shared by the subscription operations (product.md §2), as pure functions.

Each function returns the normalised value or raises the
:class:`~cpr_abonnement.errors.FilterInputError` subclass naming the rule, so the CLI,
the service and the REST API reject bad input with the same words. A rejected value
is quoted in the message only through :func:`shown`, which masks anything shaped like
a PNR: a PNR typed into the wrong field must not reach a response, log or audit row.
Each filter type's own rule lives with the type (:mod:`cpr_abonnement.filters`).

>>> remote_dir("./cpr//in/")
'cpr/in'
"""

from __future__ import annotations

import posixpath
import re
import uuid as uuidlib

from cpr_abonnement import cpr_number as pnr_rules
from cpr_abonnement.errors import (
    FilterInputError,
    InvalidRemoteDir,
    InvalidServiceAgreement,
    InvalidSubscriber,
)

#: C0 controls (NUL included), DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: The column's width (``subscriber.remote_dir``).
MAX_REMOTE_DIR = 500


def shown(value: object) -> str:
    """``repr(value)`` with anything shaped like a PNR masked, for error messages.

    >>> shown("0101901234"), shown(1502504321), shown("A1")
    ("'010190-****'", '150250-****', "'A1'")
    """
    return pnr_rules.scrub(repr(value))


def matching(pattern: re.Pattern[str], text: str, error: type[FilterInputError], what: str,
             rule: str) -> str:
    """``text`` if ``pattern`` matches all of it; else ``error``: "<what> <text> <rule>".

    >>> matching(re.compile("[0-9]+"), "12a", FilterInputError, "number", "is not digits")
    Traceback (most recent call last):
    ...
    cpr_abonnement.errors.FilterInputError: number '12a' is not digits
    """
    if not pattern.fullmatch(text):
        raise error(f"{what} {shown(text)} {rule}")
    return text


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
    cpr_abonnement.errors.InvalidRemoteDir: remote dir '../other' has a '..' \
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


def validate_uuid(value: str, *, what: str = "UserSystemUUID",
                  error: type[FilterInputError] = InvalidSubscriber) -> str:
    try:
        return str(uuidlib.UUID(str(value)))
    except ValueError:
        raise error(f"{what} {shown(value)} is not a UUID") from None


def validate_agreement(value: str) -> str:
    """A ServiceAgreementUUID, normalised (lowercase, hyphenated)."""
    return validate_uuid(value, what="ServiceAgreementUUID", error=InvalidServiceAgreement)


#: The services an agreement can be for: SF6002 (subscriptions, the default: every
#: agreement registered before look-ups existed is one) and SF1520 (person look-ups).
AGREEMENT_SERVICES = ("sf6002", "sf1520")
DEFAULT_AGREEMENT_SERVICE = AGREEMENT_SERVICES[0]


def validate_agreement_service(value: str) -> str:
    """The service an agreement is for, lowercase; one of :data:`AGREEMENT_SERVICES`."""
    text = str(value).strip().lower()
    if text not in AGREEMENT_SERVICES:
        raise InvalidServiceAgreement(f"service {shown(value)} is not one of "
                                      f"{', '.join(AGREEMENT_SERVICES)}")
    return text

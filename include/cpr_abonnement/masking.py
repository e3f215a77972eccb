"""Masking CPR numbers wherever text leaves the service (logs, errors, alerts, audit).

Kept apart from :mod:`cpr_abonnement.cpr_number` so that the exception tree can mask the PNR
it is given without importing the PNR rules (which raise those exceptions).
"""

from __future__ import annotations

import re


def compact(number: str) -> str:
    """Strip the separators people write in a PNR (``-``, spaces)."""
    return number.replace("-", "").replace(" ", "").strip()


def mask(number: str) -> str:
    """Return the form that may appear in logs and errors: ``DDMMYY-****``.

    Anything that is not a plausible PNR is masked completely, so a garbled field
    never leaks digits either.

    >>> mask('0101901234'), mask('01019'), mask('')
    ('010190-****', '****', '****')
    """
    digits = compact(number)
    if len(digits) == 10:
        return f"{digits[:6]}-****"
    return "****"


# 10 digits, also written DDMMYY-SSSS or DDMMYY SSSS (spaces as people type them), and 9:
# a PNR stored as an integer loses its leading zero.
_PNR_LIKE = re.compile(
    r"(?<!\d)(\d{6}(?=(?:-|\s+)?\d{4}(?!\d))|\d{5}(?=\d{4}(?!\d)))(?:-|\s+)?\d{4}")


def scrub(text: str) -> str:
    """Mask anything shaped like a PNR in free text (logs, alerts, rejected input).

    A 5-digit group followed by a hyphen is not taken for a PNR, so UUIDs survive.

    >>> scrub("PNR 0101901234, 010190-1234, 010190 1234, 101901234 but not 12345678901")
    'PNR 010190-****, 010190-****, 010190-****, 10190-**** but not 12345678901'
    >>> scrub("6f1f0b8e-6a55-4f55-9d7b-1c5c12345-1234")
    '6f1f0b8e-6a55-4f55-9d7b-1c5c12345-1234'
    """
    return _PNR_LIKE.sub(r"\1-****", text)

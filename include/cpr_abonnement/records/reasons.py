"""Why a delivery attempt failed, as one short line: what a console cell, a health line
and an alert's subject show of the ledger's detail.

Apart from :mod:`cpr_abonnement.records.ledger` because the failure alert uses it, and
the alert is imported by the daily DAG file, which the DAG processor parses every half
minute in a fresh process: the ledger's import path (the ORM models, 60 ms) was most of
that parse (issue 26).
"""

from __future__ import annotations

import re

#: A failed attempt's detail as the deliver task records it: the exception type, then
#: (for our DeliveryError) the delivery restated ("delivery of F to S: "), then the cause.
_RESTATED = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*: )?delivery of \S+ to [^:]+: ")


def short_reason(detail: str, limit: int = 90) -> str:
    """Why an attempt failed, as one short line for a console cell, a health line or an
    alert's subject: the detail's first line without our exception type and the
    restated delivery, when it restates it (the reader sees whose delivery it is)."""
    lines = detail.strip().splitlines()
    if not lines:
        return ""
    return clip(_RESTATED.sub("", lines[0], count=1) or lines[0], limit)


def clip(text: str, limit: int) -> str:
    """The text cut to ``limit`` characters, the cut shown by an ellipsis."""
    return text if len(text) <= limit else text[:limit - 1] + "…"

"""Reference data shipped with the package: municipality codes and CPR event codes.

Both tables are copies of ``shared/data`` (see its README for sources and known gaps),
loaded once. The event-code set is open (CPR adds codes over time), so membership in
:func:`event_codes` is advisory: unknown codes are accepted with a warning.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class Municipality:
    code: str
    name: str
    region: str
    kind: str


def _table(name: str) -> list[dict[str, str]]:
    text = resources.files("cpr_abonnement").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def municipalities() -> dict[str, Municipality]:
    """Every known municipality code (4 digits) to its row."""
    return {r["code"]: Municipality(r["code"], r["name"], r["region"], r["kind"])
            for r in _table("municipalities.csv")}


@cache
def event_codes() -> dict[str, str]:
    """Known event codes to their English meaning (``unknown`` where no source gives one)."""
    return {r["code"]: r["meaning_en"] for r in _table("event-codes.csv")}

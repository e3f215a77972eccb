"""Change (event) code filter: any of the person's 099 records carries the code,
derived or not (product.md §2, §3). The set of codes is open: a code missing from the
known list is accepted with a warning, since CPR adds codes over time."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cpr_abonnement.errors import InvalidEventCode
from cpr_abonnement.filters.base import Argument, Context, FilterType, Pairs, by_key
from cpr_abonnement.reference import event_codes
from cpr_abonnement.store.models import Base, CodeRow
from cpr_abonnement.subscriptions.rules import matching

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_EVENT = re.compile(r"[A-Z][0-9]{2}")


class ChangeCodeFilter(CodeRow, Base):
    """``code``: the event code as in record 099 HAENDELSE, e.g. ``A01``."""

    __tablename__ = "filter_change_code"
    code_width = 3


def parse_event_code(value: object) -> str:
    """One letter and two digits (upper-cased).

    >>> parse_event_code("a01")
    'A01'
    """
    return matching(_EVENT, str(value).strip().upper(), InvalidEventCode, "event code",
                    "is not one letter followed by two digits (e.g. A01)")


class ChangeCode(FilterType):
    group = "ChangeCode"
    model = ChangeCodeFilter
    arguments = (Argument("code", "changeCode", str, ("A01",), "one letter and two digits"),)
    listing, label, noun, cli = "change_codes", "change codes", "change-code", "change-code"

    def parse(self, *raw: Any) -> dict[str, Any]:
        (value,) = raw
        return {"code": parse_event_code(value)}

    def warning(self, values: dict[str, Any]) -> str | None:
        code = values["code"]
        if code in event_codes():
            return None
        return (f"event code {code} is not in the known list of CPR event codes; accepted, "
                "since CPR adds codes over time")

    def select(self, rows: pd.DataFrame, context: Context) -> Pairs:
        import numpy as np
        import pandas as pd
        events = context.events
        if not len(events):
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        cats = pd.Index(events["code"].cat.categories)
        event_code = events["code"].cat.codes.to_numpy().astype(np.int64)
        key = cats.get_indexer(rows["code"].to_numpy())
        ok = key >= 0
        sub, items = by_key(event_code, rows["sub"].to_numpy()[ok], key[ok], key[ok])
        return sub, events["person"].to_numpy()[items]

    def explain(self, context: Context, rows: pd.DataFrame, who: np.ndarray
                ) -> list[list[str]]:
        wanted = set(rows["code"])
        codes_of = context.codes_by_person
        return [[f"{self.group} {c}" for c in sorted(wanted & codes_of.get(p, set()))]
                for p in who.tolist()]


CHANGE_CODE = ChangeCode()

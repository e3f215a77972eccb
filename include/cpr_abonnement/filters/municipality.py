"""Municipality code filter: the person's *current* 002 KOMKOD (product.md §2, §3).

Movers in match, movers out and persons without 002 do not (the scanner's
``municipality`` is the current code, -1 when there is none).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cpr_abonnement.errors import InvalidMunicipalityCode
from cpr_abonnement.filters.base import Argument, Context, FilterType, Pairs, by_key
from cpr_abonnement.store.models import Base, CodeRow
from cpr_abonnement.subscriptions.rules import matching

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_MUNICIPALITY = re.compile(r"[0-9]{1,4}")


class MunicipalityFilter(CodeRow, Base):
    """``code``: zero-padded to 4 digits, as KOMKOD in record 002."""

    __tablename__ = "filter_municipality"
    code_width = 4


def parse_municipality_code(value: object) -> str:
    """1-4 digits, returned zero-padded to 4.

    >>> parse_municipality_code("851")
    '0851'
    """
    return matching(_MUNICIPALITY, str(value).strip(), InvalidMunicipalityCode,
                    "municipality code", "is not 1-4 digits").zfill(4)


class Municipality(FilterType):
    group = "MunicipalityCode"
    model = MunicipalityFilter
    arguments = (Argument("code", "municipalityCode", str, ("851", "0101"), "1-4 digits"),)
    listing, label, noun, cli = ("municipality_codes", "municipality codes", "municipality",
                                 "municipality")

    def parse(self, *raw: Any) -> dict[str, Any]:
        (value,) = raw
        return {"code": parse_municipality_code(value)}

    def select(self, rows: pd.DataFrame, context: Context) -> Pairs:
        import numpy as np
        codes = rows["code"].to_numpy().astype(np.int64)
        return by_key(context.persons["municipality"].to_numpy(), rows["sub"].to_numpy(),
                      codes, codes)

    def explain(self, context: Context, rows: pd.DataFrame, who: np.ndarray
                ) -> list[list[str]]:
        return [[f"{self.group} {kom:04d}"]
                for kom in context.persons["municipality"].to_numpy()[who].tolist()]


MUNICIPALITY_CODE = Municipality()

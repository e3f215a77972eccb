"""The "no filter" subscription (SF6002 1.1: ``AddNoFilterSubscription``; Serviceplatformen's
"Ingen filtre"): every person of the extract, with all their records.

It is an explicit filter like the others, so a subscriber without any filter still
receives no persons. It has no arguments: a subscriber has it (one current row, with
its validity period) or not. 910 and 997 records are never forwarded, as for every
type: they belong to no person (the scanner keeps them out of the persons).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cpr_abonnement.filters.base import Context, FilterType, Pairs
from cpr_abonnement.store.models import Base, FilterRow, filter_indexes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class NoFilterRow(FilterRow, Base):
    __tablename__ = "filter_none"
    __table_args__ = filter_indexes("filter_none", lookup=False)


class NoFilter(FilterType):
    group = "NoFilter"
    model = NoFilterRow
    arguments = ()
    listing, label, noun, cli = "no_filter", "no filter", "no-filter", "no-filter"

    def parse(self, *raw: Any) -> dict[str, Any]:
        return {}

    def listed(self, row: tuple[Any, ...]) -> bool:
        return True

    def as_listing(self, items: list[Any]) -> bool:
        """GetAllFilters' ``noFilter`` is one boolean, not a list."""
        return bool(items)

    def summary(self, items: list[Any]) -> str:
        return f"{self.label}: {'yes (every person)' if items else '-'}"

    def select(self, rows: pd.DataFrame, context: Context) -> Pairs:
        import numpy as np
        n = len(context.persons)
        subs = np.unique(rows["sub"].to_numpy())
        return np.repeat(subs, n), np.tile(np.arange(n, dtype=np.int64), len(subs))

    def explain(self, context: Context, rows: pd.DataFrame, who: np.ndarray
                ) -> list[list[str]]:
        return [[self.label]] * len(who)


NO_FILTER = NoFilter()

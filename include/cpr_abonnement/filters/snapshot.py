"""The filters in force at one instant, for every active subscriber at once.

Each filter type loads its own rows (:meth:`FilterType.in_force`): most read their
table whole (a handful of rows per subscriber); PNR reads only the rows whose PNR
occurs in the extract.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from cpr_abonnement import filters as registry
from cpr_abonnement.filters.base import FilterType
from cpr_abonnement.subscriptions.recipient import Recipient
from cpr_abonnement.subscriptions.snapshot import subscribers_at


@dataclass
class FilterSnapshot:
    """Every active subscriber's filters in force at ``as_of``.

    ``filters`` holds one frame per type, in registry order: column ``sub`` (the
    subscriber's position in ``subscribers``) and the type's argument columns.
    """

    as_of: dt.datetime
    subscribers: list[Recipient]
    filters: dict[FilterType, pd.DataFrame]


def _frame(rows: list, columns: list[str], position: dict[int, int]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=["subscriber_id", *columns])
    df["sub"] = df["subscriber_id"].map(position)
    df = df.dropna(subset=["sub"])  # filters of disabled subscribers
    df["sub"] = df["sub"].astype(np.int64)
    return df[["sub", *columns]].reset_index(drop=True)


def load_snapshot(engine: Engine, as_of: dt.datetime, pnrs: np.ndarray) -> FilterSnapshot:
    """The filters in force at ``as_of`` (naive UTC) that can match ``pnrs`` (int64).

    Subscribers are those registered by ``as_of`` and active then (a subscriber
    disabled since still gets a re-run of an earlier day; one added since does not).
    """
    with engine.connect() as conn:
        ids, subscribers = subscribers_at(conn, as_of)
        position = {sid: i for i, sid in enumerate(ids)}
        filters = {t: _frame(t.in_force(conn, as_of, pnrs), [a.name for a in t.arguments],
                             position) for t in registry.TYPES}
    return FilterSnapshot(as_of, subscribers, filters)

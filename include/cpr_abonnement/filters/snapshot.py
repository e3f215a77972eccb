"""The filters in force at one instant, for every active subscriber at once.

Each filter type loads its own rows (:meth:`FilterType.in_force`): most read their
table whole (a handful of rows per subscriber); PNR reads only the rows whose PNR
occurs in the extract.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from cpr_abonnement import filters as registry
from cpr_abonnement.filters.base import FilterType
from cpr_abonnement.subscriptions.active import subscribers_at
from cpr_abonnement.subscriptions.recipient import Recipient


@dataclass
class FilterSnapshot:
    """Every active subscriber's filters in force at ``as_of``.

    ``filters`` holds one frame per type, in registry order: column ``sub`` (the
    subscriber's position in ``subscribers``) and the type's argument columns.
    """

    as_of: dt.datetime
    subscribers: list[Recipient]
    filters: dict[FilterType, pd.DataFrame]


def _frame(rows: Sequence[Any] | np.ndarray, columns: list[str], position: dict[int, int]
           ) -> pd.DataFrame:
    """Rows ``(subscriber_id, *columns)`` (or their 2-D array) as a frame with ``sub``
    (position) first.

    The rows are taken apart column by column before pandas sees them: given the
    SQLAlchemy rows themselves, pandas probes every row for attributes, each probe a
    caught exception inside SQLAlchemy, which cost seconds for the PNR join's hits.
    """
    names = ["subscriber_id", *columns]
    if isinstance(rows, np.ndarray):
        df = pd.DataFrame(dict(zip(names, rows.T, strict=True)))
    else:
        values = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        df = pd.DataFrame({name: list(col) if col else np.empty(0, dtype=object)
                           for name, col in zip(names, values, strict=True)})
    known = pd.Index(np.fromiter(position, dtype=np.int64, count=len(position)))
    at = known.get_indexer(df["subscriber_id"].to_numpy())
    keep = at >= 0  # filters of disabled subscribers are dropped
    sub = np.fromiter(position.values(), dtype=np.int64, count=len(position))[at[keep]]
    df = df[keep].reset_index(drop=True)
    df.insert(0, "sub", sub)
    return df[["sub", *columns]]


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

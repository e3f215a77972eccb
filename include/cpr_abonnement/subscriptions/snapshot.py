"""Loading the filters in force at one instant, for every active subscriber at once.

Age, municipality and change-code filters are few (a handful per subscriber) and are
read whole. PNR filters can be tens of millions of rows, so they are never read
whole: the day's PNRs go into a temporary table and the database joins them against
``filter_pnr`` through its ``(pnr, subscriber_id)`` index, returning only the hits.
The cost is one index probe per person in the extract, whatever the filter table's
size (measured in ``bench/filter_day.py``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Connection, DateTime, Engine, and_, bindparam, or_, select, text
from sqlalchemy.sql import ColumnElement

from cpr_abonnement.subscriptions.models import (
    AgeRangeFilter,
    ChangeCodeFilter,
    MunicipalityFilter,
    Subscriber,
)
from cpr_abonnement.subscriptions.service import in_force


@dataclass(frozen=True, slots=True)
class Subscription:
    """An active subscriber as the pipeline needs it (position = its index in a snapshot)."""

    uuid: str
    name: str
    sftp_conn_id: str | None
    remote_dir: str


@dataclass
class FilterSnapshot:
    """Every active subscriber's filters in force at ``as_of``.

    Frames refer to subscribers by position in ``subscribers`` (column ``sub``).
    ``pnr_hits`` holds only PNR filters whose PNR occurs in the extract.
    """

    as_of: dt.datetime
    subscribers: list[Subscription]
    pnr_hits: pd.DataFrame        # sub, pnr (int64)
    age_ranges: pd.DataFrame      # sub, start, end
    municipalities: pd.DataFrame  # sub, code (int)
    change_codes: pd.DataFrame    # sub, code (str)


def _frame(rows, columns: list[str], position: dict[int, int]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=["subscriber_id", *columns])
    df["sub"] = df["subscriber_id"].map(position)
    df = df.dropna(subset=["sub"])  # filters of disabled subscribers
    df["sub"] = df["sub"].astype(np.int64)
    return df[["sub", *columns]].reset_index(drop=True)


def subscribed_at(as_of: dt.datetime) -> ColumnElement[bool]:
    """Subscribers registered by ``as_of`` (naive UTC) and active then: a subscriber
    disabled since still counts (a re-run of an earlier day), one added since does not."""
    return and_(Subscriber.created_at <= as_of,
                or_(Subscriber.active.is_(True), Subscriber.disabled_at > as_of))


def load_snapshot(engine: Engine, as_of: dt.datetime, pnrs: np.ndarray) -> FilterSnapshot:
    """The filters in force at ``as_of`` (naive UTC) that can match ``pnrs`` (int64).

    Subscribers are those registered by ``as_of`` and active then (a subscriber
    disabled since still gets a re-run of an earlier day; one added since does not).
    """
    with engine.connect() as conn:
        subs = conn.execute(
            select(Subscriber.id, Subscriber.uuid, Subscriber.name, Subscriber.sftp_conn_id,
                   Subscriber.remote_dir)
            .where(subscribed_at(as_of))
            .order_by(Subscriber.uuid)
        ).all()
        position = {row.id: i for i, row in enumerate(subs)}
        subscribers = [Subscription(r.uuid, r.name, r.sftp_conn_id, r.remote_dir) for r in subs]

        def small(model, *cols):
            return conn.execute(select(model.subscriber_id, *cols)
                                .where(in_force(model, as_of))).all()

        ages = _frame(small(AgeRangeFilter, AgeRangeFilter.start_age, AgeRangeFilter.end_age),
                      ["start", "end"], position)
        kom = _frame(small(MunicipalityFilter, MunicipalityFilter.code), ["code"], position)
        kom["code"] = kom["code"].astype(np.int64)
        codes = _frame(small(ChangeCodeFilter, ChangeCodeFilter.code), ["code"], position)
        hits = _frame(_pnr_hits(conn, as_of, pnrs), ["pnr"], position)
        hits["pnr"] = hits["pnr"].astype(np.int64)
    return FilterSnapshot(as_of, subscribers, hits, ages, kom, codes)


def _pnr_hits(conn: Connection, as_of: dt.datetime, pnrs: np.ndarray) -> list:
    day = np.unique(np.asarray(pnrs, dtype=np.int64)).tolist()
    if not day:
        return []
    postgres = conn.dialect.name == "postgresql"
    conn.exec_driver_sql("DROP TABLE IF EXISTS day_pnr")
    conn.exec_driver_sql("CREATE TEMPORARY TABLE day_pnr (pnr BIGINT PRIMARY KEY)")
    if postgres:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy("COPY day_pnr (pnr) FROM STDIN") as copy:
            for p in day:
                copy.write_row((p,))
        conn.exec_driver_sql("ANALYZE day_pnr")
        join = "day_pnr d JOIN filter_pnr f ON f.pnr = d.pnr"
    else:
        # One statement over a JSON array: SQLite parses it in C, ~10x faster than
        # a million-row executemany.
        conn.exec_driver_sql("INSERT INTO day_pnr (pnr) SELECT value FROM json_each(?)",
                             (json.dumps(day),))
        # CROSS JOIN fixes SQLite's loop order: the day's PNRs outside, index probes inside.
        join = "day_pnr d CROSS JOIN filter_pnr f ON f.pnr = d.pnr"
    query = text(
        f"SELECT f.subscriber_id, f.pnr FROM {join} "
        "WHERE f.added_at <= :t AND (f.removed_at IS NULL OR f.removed_at > :t)"
    ).bindparams(bindparam("t", type_=DateTime))
    rows = conn.execute(query, {"t": as_of}).all()
    conn.exec_driver_sql("DROP TABLE day_pnr")
    return rows

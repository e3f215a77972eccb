"""PNR filter: the person's PNR is in the subscriber's list (product.md §2, §3).

Stored as ``BIGINT`` (leading zeros dropped; shown with ``f"{pnr:010d}"``): integer
keys make the daily join against millions of rows smaller and faster than text. PNR
filters can be tens of millions of rows, so the snapshot never reads them whole: the
database joins the day's PNRs against ``filter_pnr`` through its covering
``(pnr, subscriber_id, added_at, removed_at)`` index, returning only the hits (one
index probe per person in the extract, whatever the table's size, and no table row
read; ``bench/filter_day.py``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Connection, DateTime, Dialect, bindparam, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from cpr_abonnement import cpr_number as pnr_rules
from cpr_abonnement.errors import InvalidPnr, InvalidPnrInput
from cpr_abonnement.filters.base import Argument, Context, FilterType, Pairs
from cpr_abonnement.store.models import Base, FilterRow, filter_indexes

#: The day's PNRs joined per query on SQLite: each query's hits come back as one text,
#: and a text stays far below SQLite's 1 GB limit however many subscribers hold them.
DAY_CHUNK = 100_000
#: Above every PNR (ten digits): a hit's subscriber id and PNR packed in one integer.
PNR_SPAN = 10_000_000_000

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class PnrFilter(FilterRow, Base):
    __tablename__ = "filter_pnr"
    __table_args__ = filter_indexes("filter_pnr", "pnr", covering=True)

    pnr: Mapped[int] = mapped_column(BigInteger)


def parse_pnr(value: str) -> str:
    """10 digits whose first six are a real date; never a modulus-11 check."""
    try:
        return pnr_rules.validate(str(value))
    except InvalidPnr as exc:
        raise InvalidPnrInput(str(exc)) from None


class Pnr(FilterType):
    group = "PNR"
    model = PnrFilter
    arguments = (Argument("pnr", "pnr", str, ("0101901234", "1502504321"),
                          "10 digits, DDMMYY a real date", masked=True),)
    listing, label, noun, cli = "pnrs", "PNRs", "PNR", "pnr"
    missing = "NON_EXISTING_PNR"
    bulk = True

    def parse(self, *raw: Any) -> dict[str, Any]:
        (value,) = raw
        return {"pnr": int(parse_pnr(value))}

    def listed(self, row: tuple[Any, ...]) -> str:
        return f"{row[0]:010d}"

    def summary(self, items: list[Any]) -> str:
        """The count and at most five, masked: the list can be millions long."""
        shown = ", ".join(pnr_rules.mask(p) for p in items[:5]) + (
            " ..." if len(items) > 5 else "")
        return f"{self.label}: {len(items)}{' (' + shown + ')' if items else ''}"

    def in_force(self, conn: Connection, as_of: dt.datetime, pnrs: np.ndarray) -> list:
        """Only the rows whose PNR occurs in the extract, by an index join."""
        import numpy as np
        # Sorted and deduplicated by a sort: NumPy 2's np.unique hashes instead, which
        # took seconds for a million PNRs where sorting takes 50 ms. Sorted, the index
        # probes also walk the index in order.
        day = np.sort(np.asarray(pnrs, dtype=np.int64))
        day = day[np.concatenate(([True], day[1:] != day[:-1]))].tolist() if len(day) else []
        if not day:
            return []
        if conn.dialect.name == "postgresql":
            return _in_force_postgresql(conn, as_of, day)
        # The day's PNRs straight from one JSON array, which SQLite parses in C (building
        # a temporary table of them cost as much as the join); CROSS JOIN fixes the loop
        # order: the day's PNRs outside, probes of the covering index inside. The hits
        # come back as one text of numbers, subscriber id and PNR packed into one
        # (id * 10^10 + PNR: a PNR has ten digits), that NumPy parses in C. Two million
        # rows as Python tuples, then columns, cost 1.8 s; as "id,pnr,..." text 1.1; so
        # packed 0.6 (one number to format and append per hit instead of three).
        stamp = _stored(conn.dialect, as_of)
        cursor = conn.connection.driver_connection
        packed = np.concatenate([np.fromstring(cursor.execute(
            f"SELECT group_concat(f.subscriber_id * {PNR_SPAN} + f.pnr) FROM json_each(?) d "
            "CROSS JOIN filter_pnr f ON f.pnr = d.value "
            "WHERE f.added_at <= ? AND (f.removed_at IS NULL OR f.removed_at > ?)",
            (json.dumps(day[i:i + DAY_CHUNK]), stamp, stamp)).fetchone()[0] or "",
            dtype=np.int64, sep=",") for i in range(0, len(day), DAY_CHUNK)])
        return np.column_stack(np.divmod(packed, PNR_SPAN))

    def apply_many(self, session: Session, subscriber_id: int, raw: Sequence[Any],
                   now: dt.datetime, *, adding: bool, missing: str) -> list[str]:
        """Vectorised: one query for the current list, one COPY/INSERT or UPDATE."""
        import numpy as np
        values, ok = parse_pnrs(raw)
        current = np.fromiter(
            session.scalars(select(PnrFilter.pnr).where(PnrFilter.subscriber_id == subscriber_id,
                                                        PnrFilter.removed_at.is_(None))),
            dtype=np.int64)
        results = np.full(len(values), "REJECTED: not 10 digits forming a real date "
                          "(DDMMYY)", dtype=object)
        candidates = np.flatnonzero(ok)
        uniq, first = np.unique(values[candidates], return_index=True)
        present = np.isin(uniq, current)
        if adding:
            results[candidates] = "ALREADY_EXISTED"
            results[candidates[first[~present]]] = "ADDED"
            _insert_pnrs(session, subscriber_id, uniq[~present], now)
        else:
            results[candidates] = missing
            results[candidates[first[present]]] = "REMOVED"
            _close_pnrs(session, subscriber_id, uniq[present], now)
        return results.tolist()

    def select(self, rows: pd.DataFrame, context: Context) -> Pairs:
        import numpy as np
        import pandas as pd
        person = pd.Index(context.persons["pnr"].to_numpy()).get_indexer(
            rows["pnr"].to_numpy(dtype=np.int64))
        found = person >= 0
        return rows["sub"].to_numpy()[found], person[found]

    def explain(self, context: Context, rows: pd.DataFrame, who: np.ndarray
                ) -> list[list[str]]:
        return [[self.group]] * len(who)


PNR = Pnr()


def parse_pnrs(pnrs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised PNR rule for bulk input: int64 values and which items are valid."""
    import numpy as np

    from cpr_abonnement.extract.dates import birth_from_pnr
    compact = [pnr_rules.compact(str(p)) for p in pnrs]
    ok = np.fromiter((len(c) == 10 and c.isascii() and c.isdigit() for c in compact), dtype=bool,
                     count=len(compact))
    values = np.fromiter((int(c) if good else 0 for c, good in zip(compact, ok, strict=True)),
                         dtype=np.int64, count=len(compact))
    ok &= birth_from_pnr(values) > 0
    return values, ok


def _in_force_postgresql(conn: Connection, as_of: dt.datetime, day: list[int]) -> list:
    """The day's PNRs COPYed into an analysed temporary table, joined by the planner."""
    conn.exec_driver_sql("DROP TABLE IF EXISTS day_pnr")
    conn.exec_driver_sql("CREATE TEMPORARY TABLE day_pnr (pnr BIGINT PRIMARY KEY)")
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy("COPY day_pnr (pnr) FROM STDIN") as copy:
        for p in day:
            copy.write_row((p,))
    conn.exec_driver_sql("ANALYZE day_pnr")
    query = text(
        "SELECT f.subscriber_id, f.pnr FROM day_pnr d JOIN filter_pnr f ON f.pnr = d.pnr "
        "WHERE f.added_at <= :t AND (f.removed_at IS NULL OR f.removed_at > :t)"
    ).bindparams(bindparam("t", type_=DateTime))
    rows = conn.execute(query, {"t": as_of}).all()
    conn.exec_driver_sql("DROP TABLE day_pnr")
    return rows


def _stored(dialect: Dialect, when: dt.datetime) -> Any:
    """``when`` as SQLAlchemy stores it (SQLite: DateTime as a fixed-format string with
    microseconds, which the period tests compare as text; the driver's own adapter would
    drop ``.000000``)."""
    column_type = PnrFilter.__table__.c.added_at.type
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    return process(when) if process else when


def _insert_pnrs(s: Session, subscriber_id: int, pnrs: np.ndarray, now: dt.datetime) -> None:
    if not len(pnrs):
        return
    conn = s.connection()
    stamp = _stored(conn.dialect, now)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(
            "COPY filter_pnr (subscriber_id, pnr, added_at) FROM STDIN"
        ) as copy:
            for p in pnrs.tolist():
                copy.write_row((subscriber_id, p, stamp))
        return
    conn.exec_driver_sql(
        "INSERT INTO filter_pnr (subscriber_id, pnr, added_at) VALUES (?, ?, ?)",
        [(subscriber_id, p, stamp) for p in pnrs.tolist()],
    )


def _close_pnrs(s: Session, subscriber_id: int, pnrs: np.ndarray, now: dt.datetime) -> None:
    if not len(pnrs):
        return
    conn = s.connection()
    marker = "%s" if conn.dialect.name == "postgresql" else "?"
    stamp = _stored(conn.dialect, now)
    conn.exec_driver_sql(
        f"UPDATE filter_pnr SET removed_at = {marker} WHERE subscriber_id = {marker} "
        f"AND pnr = {marker} AND removed_at IS NULL",
        [(stamp, subscriber_id, p) for p in pnrs.tolist()],
    )

"""The daily PNR join: only the filters in force, read from the index alone (issue 16).

At 1M persons x 20M PNR filter rows the join was the largest part of the filter stage:
a temporary table of the day's PNRs was built (a B-tree of a million keys) and every
hit was looked up in the table for its validity period. The join now reads the day's
PNRs straight from their JSON array and the period from the lookup index.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import event

from cpr_abonnement.cpr_number import mask
from cpr_abonnement.filters.pnr import PNR
from cpr_abonnement.subscriptions.service import SubscriptionService

T0 = dt.datetime(2026, 1, 1)
A, B = "00000001-0000-4000-8000-000000000001", "00000002-0000-4000-8000-000000000002"


def _at(days: int) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


@pytest.fixture
def history(engine):
    """A holds 0101901234 since day 0 and 0202801234 from day 1 to day 3; B holds
    0101901234 from day 2 on; 0303701234 is held by nobody in the extract's sense."""
    now = [T0]
    svc = SubscriptionService(engine, caller="test", clock=lambda: now[0])
    svc.add_subscriber(A, "A")
    svc.add_subscriber(B, "B")
    svc.add_pnr(A, "0101901234")
    now[0] = _at(1)
    svc.add_pnr(A, "0202801234")
    now[0] = _at(2)
    svc.add_pnr(B, "0101901234")
    now[0] = _at(3)
    svc.remove_pnr(A, "0202801234")
    svc.add_pnr(B, "0303701234")
    return engine


def _ids(engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.exec_driver_sql("SELECT id, uuid FROM subscriber").all())


def _in_force(engine, at: dt.datetime, pnrs: list[int]) -> set[tuple[str, str]]:
    """(subscriber, masked PNR) pairs in force: no full PNR reaches the test output."""
    names = _ids(engine)
    with engine.connect() as conn:
        rows = PNR.in_force(conn, at, np.array(pnrs, dtype=np.int64))
    return {(names[sub], mask(f"{pnr:010d}")) for sub, pnr in rows}


@pytest.mark.parametrize("day, expected", [
    (0, {(A, "010190-****")}),
    (1, {(A, "010190-****"), (A, "020280-****")}),
    (2, {(A, "010190-****"), (A, "020280-****"), (B, "010190-****")}),
    (3, {(A, "010190-****"), (B, "010190-****")}),
])
def test_only_the_rows_in_force_at_the_instant_for_the_days_pnrs(history, day, expected):
    day_pnrs = [202801234, 101901234, 101901234, 999999999]  # unsorted, repeated, unknown
    assert _in_force(history, _at(day), day_pnrs) == expected


def test_no_pnrs_in_the_extract_find_nothing(history):
    assert _in_force(history, _at(3), []) == set()


@pytest.fixture
def statements(history):
    """Every SQL statement SQLite runs from now on, parameters filled in (the join runs
    on the driver's cursor, past SQLAlchemy's events)."""
    seen: list[str] = []

    def trace(dbapi_connection, record, proxy=None):
        dbapi_connection.set_trace_callback(seen.append)

    event.listen(history, "checkout", trace)
    yield seen
    event.remove(history, "checkout", trace)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_join_reads_the_index_alone_and_builds_no_table(history, statements):
    _in_force(history, _at(3), [101901234, 202801234])
    joins = [s for s in statements if "FROM" in s and "filter_pnr f" in s]
    # The statements carry the day's PNRs: failures say how many, never which.
    assert len(joins) == 1, f"{len(joins)} join statements"
    assert not [s for s in statements if "CREATE" in s.upper()], "a table was created"
    with history.connect() as conn:
        plan = " / ".join(row[3] for row in conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {joins[0]}").all())
    assert "COVERING INDEX ix_filter_pnr_pnr" in plan, plan

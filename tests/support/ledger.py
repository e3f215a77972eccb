"""One registered delivery day in the filter database, shared by the ledger tests."""

from __future__ import annotations

import datetime as dt

from cpr_abonnement.records import extract_runs

DAY, TASK, NAME = dt.date(2026, 11, 26), "431101", "D261126.L431101"
SUBSCRIBER = "aaaaaaaa-0000-4000-8000-000000000001"
T = dt.datetime(2026, 11, 26, 21, 0)


def register_day(engine) -> None:
    """Record DAY's extract as received, as ``parse_and_validate`` does, so deliveries of
    that day may be recorded against it."""
    extract_runs.register(engine, task_number=TASK, production_date=DAY,
                          previous_date=DAY - dt.timedelta(days=1), file_name=NAME,
                          sha256="0" * 64, persons=1, records=1, clock=lambda: T, as_of=T)

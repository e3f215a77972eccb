"""The registry of processed extracts: each extract's first processing fixes its filter
snapshot instant, and the latest delivered one anchors the production-date chain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cpr_abonnement.errors import ExtractConflict
from cpr_abonnement.store.clock import lock_filters
from cpr_abonnement.store.models import ExtractRun


@dataclass(frozen=True)
class ExtractRecord:
    task_number: str
    production_date: dt.date
    previous_date: dt.date
    file_name: str
    extract_sha256: str
    first_processed_at: dt.datetime
    filters_as_of: dt.datetime
    delivered_at: dt.datetime | None
    #: True when this call registered the extract (its first processing).
    new: bool = False

    @classmethod
    def of(cls, row: ExtractRun, new: bool = False) -> ExtractRecord:
        return cls(row.task_number, row.production_date, row.previous_date, row.file_name,
                   row.extract_sha256, row.first_processed_at, row.filters_as_of,
                   row.delivered_at, new)


def register(engine: Engine, *, task_number: str, production_date: dt.date,
             previous_date: dt.date, file_name: str, sha256: str, persons: int, records: int,
             clock: Callable[[], dt.datetime] | None = None,
             as_of: dt.datetime | None = None) -> ExtractRecord:
    """Record the first processing of an extract, or return the earlier record.

    The first processing fixes ``filters_as_of``; later calls get the same instant
    back, which is what makes re-runs reproduce the same bytes. A different file for
    the same task and day is refused rather than silently replacing the first.
    The instant is the database server's (``clock`` only for tests): filter rows are
    stamped by other hosts with the same clock, so the snapshot never depends on
    how well the hosts' clocks agree.
    """
    with Session(engine) as s, s.begin():
        now = lock_filters(s, clock)  # the snapshot instant is chosen under the filter lock
        row = s.scalar(select(ExtractRun).where(ExtractRun.task_number == task_number,
                                                ExtractRun.production_date == production_date))
        if row is not None:
            if row.extract_sha256 != sha256:
                raise ExtractConflict(
                    f"{file_name} differs from the extract for task {task_number}, "
                    f"{production_date} processed at {row.first_processed_at:%Y-%m-%d %H:%M} "
                    f"UTC (SHA-256 {row.extract_sha256[:12]}…); refusing to replace it")
            return ExtractRecord.of(row)
        row = ExtractRun(task_number=task_number, production_date=production_date,
                         previous_date=previous_date, file_name=file_name,
                         extract_sha256=sha256, persons=persons, records=records,
                         first_processed_at=now, filters_as_of=min(as_of or now, now))
        s.add(row)
        s.flush()
        return ExtractRecord.of(row, new=True)


def mark_delivered(engine: Engine, task_number: str, production_date: dt.date,
                   now: dt.datetime) -> None:
    with Session(engine) as s, s.begin():
        row = s.scalar(select(ExtractRun).where(ExtractRun.task_number == task_number,
                                                ExtractRun.production_date == production_date))
        if row is not None and row.delivered_at is None:
            row.delivered_at = now


def last_processed(engine: Engine, task_number: str, before: dt.date) -> ExtractRecord | None:
    """The newest extract of the task produced before ``before`` that was processed
    (validated and filtered): the link the next extract's PRODDTOFORRIG must point at.

    Delivery is tracked per subscriber in the ledger; one subscriber's failed
    delivery must not stop the next day for everyone, so it does not break the chain.
    """
    with Session(engine) as s:
        row = s.scalar(select(ExtractRun)
                       .where(ExtractRun.task_number == task_number,
                              ExtractRun.production_date < before)
                       .order_by(ExtractRun.production_date.desc()).limit(1))
        return ExtractRecord.of(row) if row else None


def processed(engine: Engine, production_date: dt.date, file_name: str
              ) -> ExtractRecord | None:
    """The registered processing of ``file_name`` for ``production_date``, if any."""
    with Session(engine) as s:
        row = s.scalar(select(ExtractRun).where(ExtractRun.production_date == production_date,
                                                ExtractRun.file_name == file_name).limit(1))
        return ExtractRecord.of(row) if row else None

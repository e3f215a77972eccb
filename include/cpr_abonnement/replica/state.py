"""How the replica stands: persons kept, the newest extract applied, and how far it lags
behind the extracts the pipeline has processed. ``cprsub replica status``, the console's
Replica page and ``cprsub health`` read the same answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from cpr_abonnement.delivery_calendar import DeliveryCalendar
from cpr_abonnement.store.models import ExtractRun, ReplicaExtract, ReplicaLookup, ReplicaPerson

#: The kinds of extract applied to the replica (``ReplicaExtract.kind``).
STATUS, CHANGE = "status", "change"


def head(engine: Engine) -> dt.date | None:
    """The newest production date applied (the chain's end); None before a load."""
    with Session(engine) as s:
        return s.scalar(select(func.max(ReplicaExtract.production_date)))


def loaded(engine: Engine) -> bool:
    """Whether a status extract has been loaded: before it there is no replica."""
    with Session(engine) as s:
        return s.scalar(select(ReplicaExtract.id).where(ReplicaExtract.kind == STATUS)
                        .limit(1)) is not None


@dataclass(frozen=True)
class ReplicaState:
    persons: int
    #: The newest extract applied (the chain's end), if any.
    last_file: str | None
    last_day: dt.date | None
    last_applied_at: dt.datetime | None
    loaded: bool
    #: The newest extract the pipeline processed.
    newest_processed: dt.date | None
    #: Delivery days between the replica's newest extract and the pipeline's.
    lag_days: int

    def line(self) -> str:
        if not self.loaded:
            return ("replica not loaded: no status extract applied (`cprsub replica load "
                    "FILE`)")
        behind = (f"{self.lag_days} delivery day(s) behind the newest processed extract "
                  f"({self.newest_processed})" if self.lag_days else "up to date")
        return (f"replica: {self.persons:,} person(s); last applied {self.last_file} "
                f"(produced {self.last_day}) at {self.last_applied_at:%Y-%m-%d %H:%M} UTC; "
                f"{behind}")

    def to_dict(self) -> dict:
        return {"persons": self.persons, "last_file": self.last_file,
                "last_day": self.last_day.isoformat() if self.last_day else None,
                "last_applied_at": self.last_applied_at.isoformat()
                if self.last_applied_at else None,
                "loaded": self.loaded,
                "newest_processed": self.newest_processed.isoformat()
                if self.newest_processed else None,
                "lag_days": self.lag_days}


def state(engine: Engine, calendar: DeliveryCalendar | None = None,
          replica: Engine | None = None) -> ReplicaState:
    """The replica in ``replica`` (default: the filter database ``engine``) against the
    extracts the pipeline processed (in ``engine``)."""
    calendar = calendar or DeliveryCalendar.default()
    replica = replica or engine
    with Session(replica) as s:
        persons = s.scalar(select(func.count()).select_from(ReplicaPerson)) or 0
        last = s.scalar(select(ReplicaExtract).order_by(
            ReplicaExtract.production_date.desc(), ReplicaExtract.id.desc()).limit(1))
    is_loaded = loaded(replica)
    with Session(engine) as s:
        newest = s.scalar(select(func.max(ExtractRun.production_date)))
    last_day = last.production_date if last else None
    lag = 0
    if is_loaded and newest is not None and last_day is not None and newest > last_day:
        lag = sum(1 for _ in calendar.delivery_days(last_day + dt.timedelta(days=1), newest))
    return ReplicaState(persons, last.file_name if last else None, last_day,
                        last.applied_at if last else None, is_loaded, newest, lag)


def lookups_per_day(engine: Engine, first: dt.date, last: dt.date) -> dict[dt.date, int]:
    """Look-ups answered or refused per day (UTC), for the console's plot."""
    day = func.date(ReplicaLookup.looked_up_at)
    with Session(engine) as s:
        rows = s.execute(select(day, func.count()).where(
            ReplicaLookup.looked_up_at >= dt.datetime.combine(first, dt.time()),
            ReplicaLookup.looked_up_at < dt.datetime.combine(last + dt.timedelta(days=1),
                                                             dt.time()))
            .group_by(day)).all()
    return {d if isinstance(d, dt.date) else dt.date.fromisoformat(d): n for d, n in rows}

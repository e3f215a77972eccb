"""Is the service healthy? What a monitoring system polls (``cprsub health``).

Healthy means: the latest delivery day whose run time has passed was processed (its
extract recorded and its run's report marked it done) and every subscriber that was
active for it has a successful entry in the delivery ledger. Before a day's run time
the previous delivery day is the one checked, so the check does not flap at 21:00.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cpr_abonnement.calendar import DeliveryCalendar
from cpr_abonnement.subscriptions.extracts import DELIVERED_OUTCOMES
from cpr_abonnement.subscriptions.models import Delivery, ExtractRun, Subscriber


@dataclass
class Health:
    healthy: bool
    delivery_day: str
    processed: bool
    subscribers: int
    delivered: int
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def due_day(now: dt.datetime, calendar: DeliveryCalendar, run_time: str,
            grace_hours: float) -> dt.date:
    """The latest delivery day whose run time plus grace has passed at ``now``."""
    cph = ZoneInfo("Europe/Copenhagen")
    local = now.astimezone(cph)
    t = dt.time.fromisoformat(run_time)
    day = local.date()
    while True:
        due = dt.datetime.combine(day, t, tzinfo=cph) + dt.timedelta(hours=grace_hours)
        if calendar.is_delivery_day(day) and due <= local:
            return day
        day -= dt.timedelta(days=1)


def check(engine: Engine, *, now: dt.datetime, calendar: DeliveryCalendar,
          run_time: str = "21:00", grace_hours: float = 8) -> Health:
    day = due_day(now, calendar, run_time, grace_hours)
    with Session(engine) as s:
        run = s.scalar(select(ExtractRun).where(ExtractRun.production_date == day)
                       .order_by(ExtractRun.id.desc()).limit(1))
        active = set(s.scalars(select(Subscriber.uuid).where(Subscriber.active.is_(True))))
        ledger = {} if run is None else {
            d.subscriber_uuid: d.outcome
            for d in s.scalars(select(Delivery).where(Delivery.extract_run_id == run.id))}
    problems = []
    if run is None:
        problems.append(f"no extract processed for {day}")
    elif run.delivered_at is None:
        problems.append(f"{run.file_name} for {day} is not marked processed")
    missing = sorted(u for u in active if ledger.get(u) not in DELIVERED_OUTCOMES)
    if run is not None and missing:
        problems.append(f"{len(missing)} subscriber(s) not delivered for {day}: "
                        + ", ".join(missing[:10]))
    delivered = sum(1 for u in active if ledger.get(u) in DELIVERED_OUTCOMES)
    return Health(not problems, str(day), run is not None and run.delivered_at is not None,
                  len(active), delivered, problems)

"""Is the service healthy? What a monitoring system polls (``cprsub health``).

Healthy means: the latest delivery day whose run time plus a grace period has passed
was processed (its extract recorded and its run's report marked it done) and every
subscriber that was active for it has a successful entry in the delivery ledger.
Before a day's run time plus grace the previous delivery day is the one checked, so the
check does not flap at 21:00.

Pick-up subscribers that have left a file un-downloaded for ``CPRSUB_PICKUP_ALERT_DAYS``
delivery days are listed in ``late_pickups`` (:func:`late_pickups`). They do not make
the service unhealthy: our delivery succeeded, the subscriber has not fetched it. The
housekeeping DAG alerts the data engineers about them once a day.

"Delivery day" and "run time" are the DAG's own: the calendar with
``CPRSUB_EXTRA_CLOSURES`` and ``CPRSUB_DELIVERY_TIME`` from :class:`Settings`, so a
closed day is never reported as missed. "Active for it" is the set the day's run
filtered for: subscribers registered by, and not disabled before, the instant of that
day's filter snapshot (``extract_run.filters_as_of``), the same rule
:func:`~cpr_abonnement.subscriptions.active.load_snapshot` applies; one added since
had no file that day, one disabled since still had one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cpr_abonnement import storage
from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.delivery import modes
from cpr_abonnement.delivery_calendar import DANISH_TIME
from cpr_abonnement.identities import expiry
from cpr_abonnement.records.ledger import DELIVERED_OUTCOMES
from cpr_abonnement.records.reasons import short_reason
from cpr_abonnement.replica.database import replica_engine
from cpr_abonnement.replica.state import state as replica_state
from cpr_abonnement.settings import Settings
from cpr_abonnement.store.db import as_naive_utc
from cpr_abonnement.store.models import Delivery, ExtractRun, Subscriber
from cpr_abonnement.subscriptions.active import subscribed_at

#: Hours after a day's run time before its absence counts as unhealthy.
GRACE_HOURS = 8.0


@dataclass
class Health:
    healthy: bool
    delivery_day: str
    processed: bool
    subscribers: int
    delivered: int
    problems: list[str] = field(default_factory=list)
    #: Pick-up subscribers late in fetching their files (not a health problem).
    late_pickups: list[str] = field(default_factory=list)
    #: Client certificates within 90 days of expiry or expired (not a health problem
    #: until they are used: :mod:`cpr_abonnement.identities.expiry`).
    expiring_certificates: list[str] = field(default_factory=list)
    #: Each place CPR data lives: free space and oldest file (:mod:`..storage`).
    storage: list[str] = field(default_factory=list)
    #: The undelivered (day, subscriber name) pairs behind ``problems``, newest first,
    #: for whoever can link them to their task logs (the console).
    undelivered: list[tuple[str, str]] = field(default_factory=list)
    #: The CPR replica's state (:mod:`cpr_abonnement.replica.state`), one line.
    replica: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def due_day(now: dt.datetime, settings: Settings, grace_hours: float = GRACE_HOURS
            ) -> dt.date:
    """The latest delivery day whose run time plus grace has passed at ``now``."""
    return settings.calendar().latest_due(now, settings.delivery_time,
                                          grace=dt.timedelta(hours=grace_hours))


def check(engine: Engine, *, now: dt.datetime, settings: Settings | None = None,
          grace_hours: float | None = None, replica: Engine | None = None) -> Health:
    """The health of the latest due delivery day (``settings`` default: the environment,
    as the DAG reads it; ``grace_hours`` default :data:`GRACE_HOURS`)."""
    settings = settings or Settings.from_env()
    day = due_day(now, settings, GRACE_HOURS if grace_hours is None else grace_hours)
    with Session(engine) as s:
        run = s.scalar(select(ExtractRun).where(ExtractRun.production_date == day)
                       .order_by(ExtractRun.id.desc()).limit(1))
        # Without a processed extract there is no snapshot: count those active now.
        as_of = run.filters_as_of if run is not None else now.astimezone(dt.UTC).replace(
            tzinfo=None)
        active = set(s.scalars(select(Subscriber.uuid).where(subscribed_at(as_of))))
        names = dict(s.execute(select(Subscriber.uuid, Subscriber.name)).tuples().all())
        ledger = {} if run is None else {
            d.subscriber_uuid: d
            for d in s.scalars(select(Delivery).where(Delivery.extract_run_id == run.id))}
        older = s.execute(
            select(ExtractRun.production_date, Delivery).join(ExtractRun)
            .join(Subscriber, Subscriber.uuid == Delivery.subscriber_uuid)
            .where(ExtractRun.production_date < day,
                   ExtractRun.production_date >= day - dt.timedelta(days=UNRESOLVED_DAYS),
                   Delivery.outcome.not_in(DELIVERED_OUTCOMES), Subscriber.active.is_(True))
            .order_by(ExtractRun.production_date.desc()).limit(SHOWN)).tuples().all()
    problems = []
    if run is None:
        problems.append(f"no extract processed for {day}")
    elif run.delivered_at is None:
        problems.append(f"{run.file_name} for {day} is not marked processed")
    missing = sorted((u for u in active if getattr(ledger.get(u), "outcome", None)
                      not in DELIVERED_OUTCOMES), key=lambda u: names.get(u, u))
    # (day, uuid, ledger row) of each undelivered day: the due day's, then older ones.
    today = [(day, u, ledger.get(u)) for u in missing] if run is not None else []
    before = [(d, row.subscriber_uuid, row) for d, row in older]

    def line(u: str, entry: Delivery | None) -> str:
        return undelivered(names.get(u, u), u, entry)

    if today:
        problems.append(f"{len(missing)} subscriber(s) not delivered for {day}: "
                        + "; ".join(line(u, e) for _, u, e in today[:SHOWN]))
    problems += [f"still not delivered for {d}: {line(u, e)}" for d, u, e in before]
    delivered = len(active) - len(missing)
    late = [x.line() for x in late_pickups(engine, day, settings)]
    certificates = [e.line() for e in expiry.expiring(engine, as_naive_utc(now))]
    places = [v.line(as_naive_utc(now)) for v in storage.volumes(settings)]
    replica = replica_state(engine, settings.calendar(), replica or replica_engine(engine))
    if replica.loaded and replica.lag_days > settings.replica_lag_days:
        problems.append(f"the CPR replica lags {replica.lag_days} delivery day(s) behind the "
                        f"newest processed extract ({replica.newest_processed}; replica at "
                        f"{replica.last_day}): runbook step \"Replica update failed\"")
    return Health(not problems, str(day), run is not None and run.delivered_at is not None,
                  len(active), delivered, problems, late, certificates, places,
                  [(str(d), names.get(u, u)) for d, u, _ in today + before], replica.line())


#: How far back an undelivered day stays a health problem until it is delivered (a
#: re-run or a clear of its ``deliver`` task updates the same ledger row).
UNRESOLVED_DAYS = 45
#: Undelivered subscribers named per day, and older undelivered days listed, at most.
SHOWN = 10


def undelivered(name: str, uuid: str, entry: Delivery | None) -> str:
    """One subscriber's undelivered day as an operator reads it: who, the outcome and
    its reason from the ledger, and the runbook step."""
    who = f"{name} ({uuid[:8]}…)"
    if entry is None:
        return f"{who}: no delivery recorded (the run stopped before delivering; " \
               f"runbook step \"Extract missing\" or \"Extract rejected\")"
    reason = short_reason(scrub(entry.detail or ""), 160) or "-"
    return f"{who}: {entry.outcome} after {entry.attempts} attempt(s): {reason} " \
           f"(runbook step \"Delivery failed\")"


@dataclass(frozen=True)
class LatePickup:
    """A pick-up subscriber whose oldest un-downloaded file has waited too long."""

    subscriber_uuid: str
    name: str
    account: str
    oldest_file: str
    oldest_day: dt.date
    waiting_files: int
    delivery_days: int

    def line(self) -> str:
        return (f"{self.name} ({self.subscriber_uuid}, account {self.account}) has not "
                f"picked up {self.waiting_files} file(s), the oldest {self.oldest_file} "
                f"for {self.delivery_days} delivery day(s)")


def pickup_cutoff(day: dt.date, settings: Settings) -> dt.date:
    """The newest production date whose file, still not picked up on ``day``, is late:
    ``CPRSUB_PICKUP_ALERT_DAYS`` delivery days before ``day`` (one rule for the health
    check and the operator console)."""
    calendar = settings.calendar()
    cutoff = day
    for _ in range(settings.pickup_alert_days):
        cutoff = calendar.previous_delivery_day(cutoff)
    return cutoff


def available_day(production_date: dt.date, available_at: dt.datetime | None) -> dt.date:
    """The day a file became available to its subscriber (Danish time): its delivery
    day, or the later day it was placed (a backfill places an old day's file today,
    and that file is not late the moment it appears)."""
    if available_at is None:
        return production_date
    placed = available_at.replace(tzinfo=dt.UTC).astimezone(DANISH_TIME).date()
    return max(production_date, placed)


def is_late(production_date: dt.date, available_at: dt.datetime | None,
            cutoff: dt.date) -> bool:
    """The one rule for a late pick-up (health, its alert, the run note, metrics and the
    console): a file still waiting that became available on or before ``cutoff``
    (:func:`pickup_cutoff`). The caller has checked that it is delivered and neither
    downloaded nor removed."""
    return available_day(production_date, available_at) <= cutoff


def late_pickups(engine: Engine, day: dt.date, settings: Settings) -> list[LatePickup]:
    """Active pick-up subscribers with a delivered data file, neither downloaded nor
    removed, available since ``CPRSUB_PICKUP_ALERT_DAYS`` or more delivery days before
    ``day`` (a file placed on Monday is late on Thursday with the default 3)."""

    calendar = settings.calendar()
    cutoff = pickup_cutoff(day, settings)
    waiting = (
        select(Subscriber.uuid, Subscriber.name, Subscriber.pickup_account,
               ExtractRun.production_date, Delivery.available_at, Delivery.file_name)
        .join(Delivery, Delivery.subscriber_uuid == Subscriber.uuid)
        .join(ExtractRun, ExtractRun.id == Delivery.extract_run_id)
        .where(Subscriber.active.is_(True), Subscriber.delivery_mode.in_(modes.with_accounts()),
               Delivery.outcome.in_(DELIVERED_OUTCOMES), Delivery.picked_up_at.is_(None),
               Delivery.removed_at.is_(None), ExtractRun.production_date <= day)
        .order_by(Subscriber.name, ExtractRun.production_date))
    by_subscriber: dict[str, list] = {}
    with Session(engine) as s:
        for row in s.execute(waiting):
            by_subscriber.setdefault(row.uuid, []).append(row)
    late = []
    for uuid, rows in by_subscriber.items():
        overdue = [r for r in rows if is_late(r.production_date, r.available_at, cutoff)]
        if not overdue:
            continue
        oldest = min(overdue, key=lambda r: available_day(r.production_date, r.available_at))
        since = available_day(oldest.production_date, oldest.available_at)
        days = sum(1 for _ in calendar.delivery_days(since, day)) - 1
        late.append(LatePickup(uuid, oldest.name, oldest.pickup_account or "",
                               oldest.file_name or "?", oldest.production_date, len(rows),
                               days))
    return late

"""What the ``cpr_pickup_housekeeping`` DAG's tasks do: retention of the pick-up storage,
the sweep of files the accounts created themselves, the daily alert about late
pick-ups, and the alert about client certificates close to expiry."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from sqlalchemy import Engine

from cpr_abonnement import lifecycle
from cpr_abonnement.errors import CertificatesExpiring, PickupLate
from cpr_abonnement.health import due_day, late_pickups
from cpr_abonnement.identities import expiry
from cpr_abonnement.pickup.retention import apply_retention
from cpr_abonnement.pickup.strays import sweep_strays
from cpr_abonnement.settings import Settings
from cpr_abonnement.store.db import as_naive_utc
from cpr_abonnement.tasks import metrics

log = logging.getLogger(__name__)


def remove_expired(settings: Settings, engine: Engine, *, now: dt.datetime) -> dict:
    """Remove files older than ``CPRSUB_PICKUP_RETENTION_DAYS`` from every ``IN/``."""
    result = apply_retention(Path(settings.pickup_root), engine, now=now,
                             days=settings.pickup_retention_days)
    log.info("%s", result.summary())
    return {"removed": result.removed, "kept": result.kept, "unmatched": result.unmatched}


def sweep_account_files(settings: Settings) -> list[str]:
    """Remove the (empty) files pick-up accounts created in their own ``IN/``; raise
    :class:`~cpr_abonnement.errors.PickupStrayFiles` naming the accounts (the alert)."""
    return sweep_strays(Path(settings.pickup_root))


def check_pickups(settings: Settings, engine: Engine, *, now: dt.datetime) -> list[str]:
    """Raise :class:`PickupLate` (the task fails and alerts) when a pick-up subscriber
    has not fetched a file for ``CPRSUB_PICKUP_ALERT_DAYS`` delivery days."""
    day = due_day(now, settings)
    late = [x.line() for x in late_pickups(engine, day, settings)]
    metrics.late_pickups(len(late))  # before the alert: a failed task still reports it
    if late:
        raise PickupLate(f"{len(late)} pick-up subscriber(s) late as of delivery day {day} "
                         f"(CPRSUB_PICKUP_ALERT_DAYS={settings.pickup_alert_days}):\n  - "
                         + "\n  - ".join(late))
    log.info("no late pick-ups as of delivery day %s", day)
    return late


def check_certificates(engine: Engine, *, now: dt.datetime) -> list[str]:
    """Raise :class:`CertificatesExpiring` (the task fails and alerts) for client
    certificates that reached an expiry threshold since the last alert; each threshold
    alerts once (recorded before raising, so a retry does not alert again)."""
    at = as_naive_utc(now)
    due = expiry.due(engine, at)
    if due:
        expiry.record(engine, due, at, caller="cpr_pickup_housekeeping")
        raise CertificatesExpiring(
            f"{len(due)} client certificate(s) expire within "
            f"{'/'.join(map(str, expiry.THRESHOLDS))} days or have expired:\n  - "
            + "\n  - ".join(e.line() for e in due))
    log.info("no client certificate reached an expiry threshold")
    return []


def apply_data_retention(settings: Settings, engine: Engine, *, now: dt.datetime,
                         replica: Engine | None = None) -> dict:
    """Remove the staged extracts, delivered deltas and quarantined files past their
    rules (:mod:`cpr_abonnement.lifecycle`), and the look-up log's rows past theirs
    (in the replica's database, ``replica``, when it has its own); what was removed, by
    copy."""
    at = as_naive_utc(now)
    removed = lifecycle.apply(settings, engine, at, caller="cpr_pickup_housekeeping")
    counts: dict[str, int] = {}
    for r in removed:
        counts[r.copy] = counts.get(r.copy, 0) + 1
    days = settings.lookup_log_days
    forgotten = lifecycle.forget_lookups(replica or engine, at - dt.timedelta(days=days),
                                         now=at, caller="cpr_pickup_housekeeping",
                                         rule=f"CPRSUB_LOOKUP_LOG_DAYS={days:g}")
    if forgotten:
        counts["look-up log row"] = forgotten
    log.info("retention at %s UTC: %s", f"{at:%Y-%m-%d %H:%M:%S}",
             ", ".join(f"{n} {copy}(s)" for copy, n in counts.items()) or "nothing due")
    return counts


def clock(logical_date: dt.datetime | None) -> dt.datetime:
    """The instant housekeeping judges ages against: its run's logical date (so a run,
    a re-run and a test all judge the same instant), never a time still to come."""
    now = dt.datetime.now(dt.UTC)
    return min(logical_date, now) if logical_date is not None else now

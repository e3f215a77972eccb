"""The ``deliver`` task: one subscriber's files, by its delivery mode, with the ledger.

Apart from :mod:`cpr_abonnement.tasks.daily` because a delivery task runs once per
subscriber per day, each in a process of its own: this module's import path must stay
free of the data stack (NumPy, pandas, great-expectations) the receive and filter
tasks need, which cost most of a delivery's CPU before (issue 16, item 3; a test
checks the import path).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from pathlib import Path

from sqlalchemy import Engine, bindparam, select

from cpr_abonnement import delivery
from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.delivery import modes
from cpr_abonnement.errors import (
    DeliveryConflict,
    DeltaRetired,
    MissingDeliveryTarget,
    ServiceWindowWait,
)
from cpr_abonnement.onboarding.windows import ServiceWindow, parse_all, window_end
from cpr_abonnement.records import ledger
from cpr_abonnement.staging import local_copy, staged
from cpr_abonnement.store.models import Subscriber
from cpr_abonnement.tasks.alerts import RUNBOOK, runbook_step
from cpr_abonnement.tasks.payloads import DeliveryItem, DeliveryResult

log = logging.getLogger(__name__)

#: The daily DAG's run parameter naming the pick-up subscribers whose files are placed
#: again although they fetched and removed them.
REPLACE_PARAM = "replace_pickup"


def clock() -> dt.datetime:
    """Now, naive UTC: the instant a delivery judges service windows by. One name the
    DAG calls, so a test running the DAG in its own process (``dag.test()``) can set the
    time instead of waiting for a real window to end."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def deliver_one(item: DeliveryItem, engine: Engine, *, now: dt.datetime,
                replace: bool = False) -> DeliveryResult:
    """Deliver one subscriber's files by its mode and record the attempt in the ledger.

    The attempt is counted before anything is sent, so an attempt whose process is
    killed mid-upload still shows in the ledger (as ``STARTED``, not delivered).

    A pick-up file the ledger shows delivered with the same SHA-256 and since removed
    (by the subscriber or retention) is not placed again: the re-run reports
    ``ALREADY_DELIVERED``, since the subscriber has it. ``replace`` (the run parameter
    :data:`REPLACE_PARAM`, an operator's decision) places it again, restarts its
    pick-up tracking and says so in the ledger's detail.
    """
    target = delivery.describe(item.target)
    row = dict(task_number=item.task_number, production_date=item.day,
               subscriber_uuid=item.subscriber, file_name=item.file_name,
               sha256=item.sha256, persons=item.persons, records=item.records,
               target=target, now=now)
    # The row before this attempt, for a mode that tracks removal (pick-up): a push does
    # not need it, so it is not read (a query compiled in each delivery's process).
    found = delivery.mode_of(item.target) if item.target is not None else None
    previous = (ledger.entry(engine, item.task_number, item.day, item.subscriber)
                if found is not None and found.tracks_removal else None)
    _wait_for_service_window(item, engine, row, now)
    ledger.start_delivery(engine, **row)

    def record(outcome: str, detail: str, size_bytes: int | None = None) -> None:
        ledger.finish_delivery(engine, **row, outcome=outcome, detail=scrub(detail),
                               size_bytes=size_bytes)

    try:
        mode = _required(found, item)
        collected = mode.tracks_removal and ledger.collected(previous, item.sha256)
        if collected and not replace:
            return _already_collected(item, previous, record)
        if not staged(item.data).exists():
            raise DeltaRetired(
                "its delta is no longer in staging: retention removes a delta "
                "CPRSUB_DELTA_GRACE_DAYS after it was delivered. Clear "
                "filter_for_subscribers with its downstream tasks: it makes the same "
                "bytes again from the staged extract", subscriber=item.name,
                file_name=item.file_name)
        with tempfile.TemporaryDirectory(prefix="cprsub-") as scratch:
            files = [local_copy(staged(url), Path(scratch))
                     for url in (item.data, item.metadata)]
            outcomes = mode.deliver(files, item.target, subscriber=item.name)
        replaced = collected and not all(o.already_there for o in outcomes)
        if replaced:
            ledger.restart_pickup_tracking(engine, item.task_number, item.day,
                                           item.subscriber)
        mode.announce(engine, item.target, item.file_name)
    except DeliveryConflict as exc:
        record("CONFLICT", str(exc))
        _log_failure(item, "CONFLICT", exc)
        raise
    except Exception as exc:
        record("FAILED", f"{type(exc).__name__}: {exc}")
        _log_failure(item, "FAILED", exc)
        raise
    outcome = "ALREADY_DELIVERED" if all(o.already_there for o in outcomes) else "DELIVERED"
    detail = ", ".join(f"{o.name} ({o.nbytes} bytes)" for o in outcomes)
    if replaced:
        detail = (f"re-placed on request ({REPLACE_PARAM}); before: "
                  f"{_pickup_history(previous)}; {detail}")
        log.warning("pick-up files of %s for %s placed again on request (%s); before: %s",
                    item.subscriber, item.file_name, REPLACE_PARAM,
                    _pickup_history(previous))
    record(outcome, detail,
           size_bytes=next((o.nbytes for o in outcomes if o.name == item.file_name), None))
    log.info("delivery subscriber=%s file=%s records=%d sha256=%s outcome=%s target=%s",
             item.subscriber, item.file_name, item.records, item.sha256, outcome, target)
    return DeliveryResult(item.subscriber, outcome)


def _log_failure(item: DeliveryItem, outcome: str, exc: BaseException) -> None:
    """One readable line above the traceback in the task log: who, what, why, and the
    runbook step that says what to do next."""
    step = runbook_step("deliver", exc) or "Delivery failed"
    log.error("delivery %s (%s) file=%s outcome=%s reason=%s next: runbook step \"%s\" "
              "(%s)", item.name, item.subscriber, item.file_name, outcome,
              scrub(f"{type(exc).__name__}: {exc}").splitlines()[0][:300], step, RUNBOOK)


def _pickup_history(entry: ledger.LedgerEntry) -> str:
    return (f"available {entry.available_at}, downloaded {entry.picked_up_at}, removed by "
            f"{entry.removed_by} at {entry.removed_at}")


def _already_collected(item: DeliveryItem, previous: ledger.LedgerEntry, record
                       ) -> DeliveryResult:
    """Record (and return) a re-run that leaves a fetched and removed file alone."""
    detail = (f"{item.file_name} was delivered with this SHA-256 and {_pickup_history(previous)}"
              f"; not placed again (to place it again: run parameter {REPLACE_PARAM} "
              f"with this subscriber's UUID)")
    record("ALREADY_DELIVERED", detail)
    log.info("delivery subscriber=%s file=%s outcome=ALREADY_DELIVERED: %s", item.subscriber,
             item.file_name, detail)
    return DeliveryResult(item.subscriber, "ALREADY_DELIVERED")


def _wait_for_service_window(item: DeliveryItem, engine: Engine, row: dict,
                             now: dt.datetime) -> None:
    """Refuse to deliver into the subscriber's service window (its server is down for
    maintenance) when the mode reaches the subscriber's server: record the wait in the
    ledger, not as an attempt, and raise :class:`ServiceWindowWait` for the task to wait
    until the window ends. A mode that places files on our side (pick-up) does not wait."""
    spec = modes.find(item.target.mode) if item.target is not None else None
    if spec is None or not spec.reaches_subscriber:
        return
    until = window_end(_service_windows(engine, item.subscriber), now.replace(tzinfo=dt.UTC))
    if until is None:
        return
    detail = f"waiting for service window until {until:%Y-%m-%d %H:%M} (Danish time)"
    ledger.record_wait(engine, **row, until=until, detail=detail)
    log.info("delivery subscriber=%s file=%s %s", item.subscriber, item.file_name, detail)
    raise ServiceWindowWait(f"{item.name}: {detail}", subscriber=item.subscriber,
                            until=until)


def _service_windows(engine: Engine, uuid: str) -> tuple[ServiceWindow, ...]:
    """The service windows registered for subscriber ``uuid`` (none if it has no
    registration document, or is unknown). Read here, not through the subscription
    service, whose import path (certificates, credentials, filters) a delivery task
    would otherwise pay for every subscriber (issue 16, item 3)."""
    with engine.connect() as conn:
        stored = conn.scalar(_REGISTRATION, {"uuid": uuid})
    return parse_all(json.loads(stored).get("service_windows", [])) if stored else ()


def warm(engine: Engine) -> None:
    """Run a delivery's read-only queries once, for keys no row has, and compile its
    ledger write without writing (:func:`~cpr_abonnement.records.ledger.warm`), so
    that ``engine`` holds their compiled forms for the task processes a preloading
    executor forks (:func:`cpr_abonnement.airflow_side.connections.preload_task_engine`)."""
    _service_windows(engine, "")
    ledger.entry(engine, "", dt.date(1900, 1, 1), "")
    ledger.warm(engine)


#: A subscriber's registration document, as a Core query built once (a delivery task
#: is a process of its own, and compiled the ORM form of it for each subscriber).
_SUBSCRIBERS = Subscriber.__table__
_REGISTRATION = select(_SUBSCRIBERS.c.registration).where(
    _SUBSCRIBERS.c.uuid == bindparam("uuid"))


def _required(mode: delivery.DeliveryMode | None, item: DeliveryItem
              ) -> delivery.DeliveryMode:
    """``mode``, the delivery mode found for ``item``'s target; none (a missing target or
    an unknown mode) is the subscriber's configuration to fix, not something a retry
    can. Raised after the attempt is counted, so the ledger shows it."""
    if item.target is None:
        raise MissingDeliveryTarget("the subscriber has no delivery target",
                                    subscriber=item.name, file_name=item.file_name)
    if mode is None:
        raise MissingDeliveryTarget(f"unknown delivery mode {item.target.mode!r}",
                                    subscriber=item.name, file_name=item.file_name)
    return mode

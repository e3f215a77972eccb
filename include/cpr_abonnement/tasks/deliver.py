"""The ``deliver`` task: one subscriber's files, by its delivery mode, with the ledger.

Apart from :mod:`cpr_abonnement.tasks.daily` because a delivery task runs once per
subscriber per day, each in a process of its own: this module's import path must stay
free of the data stack (NumPy, pandas, great-expectations) the receive and filter
tasks need, which cost most of a delivery's CPU before (issue 16, item 3; a test
checks the import path).
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path

from sqlalchemy import Engine

from cpr_abonnement import delivery
from cpr_abonnement.errors import DeliveryConflict, MissingDeliveryTarget
from cpr_abonnement.pnr import scrub
from cpr_abonnement.staging import local_copy, staged
from cpr_abonnement.subscriptions import ledger
from cpr_abonnement.tasks.payloads import DeliveryItem, DeliveryResult

log = logging.getLogger(__name__)


def deliver_one(item: DeliveryItem, engine: Engine, *, now: dt.datetime) -> DeliveryResult:
    """Deliver one subscriber's files by its mode and record the attempt in the ledger.

    The attempt is counted before anything is sent, so an attempt whose process is
    killed mid-upload still shows in the ledger (as ``STARTED``, not delivered).
    """
    target = delivery.describe(item.target)
    row = dict(task_number=item.task_number, production_date=item.day,
               subscriber_uuid=item.subscriber, file_name=item.file_name,
               sha256=item.sha256, persons=item.persons, records=item.records,
               target=target, now=now)
    ledger.start_delivery(engine, **row)

    def record(outcome: str, detail: str) -> None:
        ledger.finish_delivery(engine, **row, outcome=outcome, detail=scrub(detail))

    try:
        mode = _mode_of(item)
        with tempfile.TemporaryDirectory(prefix="cprsub-") as scratch:
            files = [local_copy(staged(url), Path(scratch))
                     for url in (item.data, item.metadata)]
            outcomes = mode.deliver(files, item.target, subscriber=item.name)
        mode.announce(engine, item.target, item.file_name)
    except DeliveryConflict as exc:
        record("CONFLICT", str(exc))
        raise
    except Exception as exc:
        record("FAILED", f"{type(exc).__name__}: {exc}")
        raise
    outcome = "ALREADY_DELIVERED" if all(o.already_there for o in outcomes) else "DELIVERED"
    record(outcome, ", ".join(f"{o.name} ({o.nbytes} bytes)" for o in outcomes))
    log.info("delivery subscriber=%s file=%s records=%d sha256=%s outcome=%s target=%s",
             item.subscriber, item.file_name, item.records, item.sha256, outcome, target)
    return DeliveryResult(item.subscriber, outcome)


def _mode_of(item: DeliveryItem) -> delivery.DeliveryMode:
    """The delivery mode of ``item``'s target; a missing target or unknown mode is the
    subscriber's configuration to fix, not something a retry can."""
    if item.target is None:
        raise MissingDeliveryTarget("the subscriber has no delivery target",
                                    subscriber=item.name, file_name=item.file_name)
    mode = delivery.MODES.get(item.target.mode)
    if mode is None:
        raise MissingDeliveryTarget(f"unknown delivery mode {item.target.mode!r}",
                                    subscriber=item.name, file_name=item.file_name)
    return mode

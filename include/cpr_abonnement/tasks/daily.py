"""What each task of the ``cpr_abonnement_daily`` DAG does, as plain functions.

The DAG file only wires these together; every function takes its inputs as arguments
(delivery day, settings, database engine, the previous task's typed payload) and
returns a payload from :mod:`~cpr_abonnement.tasks.payloads` (paths and counts, no
PNRs). Waiting for the extract is :mod:`cpr_abonnement.inbound.sensing`.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path

from sqlalchemy import Engine

from cpr_abonnement import delivery, storage
from cpr_abonnement.cpr_number import mask
from cpr_abonnement.delivery.files import sha256_file
from cpr_abonnement.errors import (
    ChainBroken,
    ExtractConflict,
    ExtractError,
    ExtractRejected,
)
from cpr_abonnement.extract import index_store
from cpr_abonnement.extract.expectations import QualityReport, run_expectations
from cpr_abonnement.extract.index import scan
from cpr_abonnement.extract.model import ExtractIndex
from cpr_abonnement.extract.validation import chain_gap, summarise, violations
from cpr_abonnement.filter_step import filter_extract
from cpr_abonnement.inbound import open_location
from cpr_abonnement.inbound.base import InboundLocation
from cpr_abonnement.inbound.quarantine import quarantine
from cpr_abonnement.onboarding.windows import TZ
from cpr_abonnement.records import extract_checks, extract_runs, ledger
from cpr_abonnement.records.extract_checks import CheckRecord, Expectation, Problem
from cpr_abonnement.records.reasons import short_reason
from cpr_abonnement.settings import Settings
from cpr_abonnement.staging import is_local, local_copy, local_path, stage_dir, staged, upload
from cpr_abonnement.tasks import metrics
from cpr_abonnement.tasks.payloads import (
    DaySummary,
    DeliveryItem,
    NoteRow,
    ReceivedExtract,
)

log = logging.getLogger(__name__)


# -- parse & validate -------------------------------------------------------------------
def receive(settings: Settings, day: dt.date, name: str, engine: Engine, *,
            allow_gap: bool) -> ReceivedExtract:
    """Copy the extract to staging, validate it, check the chain; quarantine if bad."""
    with tempfile.TemporaryDirectory(prefix="cprsub-") as scratch:
        return _receive(settings, day, name, engine, allow_gap=allow_gap,
                        scratch=Path(scratch))


def _receive(settings: Settings, day: dt.date, name: str, engine: Engine, *,
             allow_gap: bool, scratch: Path) -> ReceivedExtract:
    target = stage_dir(settings, day) / "extract" / name
    inbound = open_location(settings.inbound)
    arrived = name in inbound.list_files()
    if arrived and target.exists():
        arrived = _new_arrival(settings, day, name, engine, inbound, scratch)
    if arrived or not target.exists():
        local = local_path(target, scratch)
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_name(f".{local.name}.part")  # a crash leaves no half "archive"
        inbound.fetch(name, part)
        part.replace(local)
    else:  # a re-run: the processed extract's archive is its staged copy
        local = local_copy(target, scratch)

    size = local.stat().st_size
    try:
        index = scan(local, digest=True)
    except ExtractError as exc:  # not line-based at all
        where = quarantine(settings, name, [str(exc)])
        local.unlink(missing_ok=True)
        _record_check(engine, name, extract_checks.REJECTED, size=size, index=None,
                      problems=[Problem.of("line-based text", exc)], quarantined_to=where)
        raise ExtractRejected(f"{name} rejected, moved to {where}: {exc}") from exc
    broken = violations(index, expect_date=day)
    problems = [summarise(v) for v in broken]
    report = run_expectations(index) if not problems else None
    for outcome in report.warnings if report else []:
        log.warning("data quality (within tolerance): %s", outcome)
    if problems or (report is not None and not report.success):
        lines = [str(p) for p in problems] + (
            [f"data quality: {o}" for o in report.failures] if report else [])
        where = quarantine(settings, name, lines)
        local.unlink(missing_ok=True)
        _record_check(engine, name, extract_checks.REJECTED, size=size, index=index,
                      problems=[Problem.of(v.rule, p, v.count)
                                for v, p in zip(broken, problems, strict=True)],
                      report=report, quarantined_to=where)
        raise ExtractRejected(
            f"{name} rejected ({len(lines)} problem(s)), moved to {where}:\n  - "
            + "\n  - ".join(lines))

    _log_platform_records(index)
    start = index.start_record()
    last = extract_runs.last_processed(engine, start.task_number, before=day)
    gap = chain_gap(start, last.production_date if last else None)
    chain = [Problem.of("production-date chain", gap)] if gap is not None else []
    if gap is not None:
        message = (f"{name}: {gap.detail}. Backfill the missing day(s), or re-run with the "
                   f"param allow_gap=true to accept the gap.")
        if not allow_gap:
            _record_check(engine, name, extract_checks.HELD, size=size, index=index,
                          problems=chain, report=report)
            raise ChainBroken(message)
        log.warning("chain gap accepted by allow_gap: %s", message)
    _record_check(engine, name, extract_checks.ACCEPTED, size=size, index=index,
                  problems=chain, report=report)
    # The filter step works from this index: one scan per run (extract/index_store.py).
    saved = index_store.save(index)
    if not is_local(target):
        upload(local, target)
        upload(saved, target.parent / saved.name)
    if arrived:  # staged and accepted: the staged copy is the archive (retention.py)
        inbound.remove(name)
        log.info("%s left the inbound folder: archived in staging until retention", name)
    return ReceivedExtract(
        day=day, file_name=name, extract=str(target), sha256=index.sha256,
        task_number=start.task_number, previous_date=start.previous_date,
        persons=len(index.persons), records=index.person_records,
        platform_records=dict(index.platform_records))


def _new_arrival(settings: Settings, day: dt.date, name: str, engine: Engine,
                 inbound: InboundLocation, scratch: Path) -> bool:
    """Whether the inbound ``name``, arriving while its day's archive is in staging, is to
    be received. A second arrival of an extract already processed for ``day`` is
    recognised by its SHA-256: identical, it leaves the inbound folder (the staged copy is
    the archive) and the run goes on from that; different, it is quarantined with the
    reason, never replacing what subscribers were delivered. (Without a staged copy, as
    after retention or a lost volume, the arrival is received and becomes the archive.)"""
    done = extract_runs.processed(engine, day, name)
    if done is None:
        return True
    again = scratch / f"arrival-{name}"
    inbound.fetch(name, again)
    sha256, size = sha256_file(again)
    again.unlink()
    if sha256 == done.extract_sha256:
        inbound.remove(name)
        log.info("%s arrived again, identical to the extract processed at %s UTC: "
                 "recognised, removed from the inbound folder", name,
                 f"{done.first_processed_at:%Y-%m-%d %H:%M}")
        return False
    reason = (f"a second {name} for {day}, different from the one processed at "
              f"{done.first_processed_at:%Y-%m-%d %H:%M} UTC (SHA-256 "
              f"{done.extract_sha256[:12]}…, this one {sha256[:12]}…): not processed")
    where = quarantine(settings, name, [reason])
    _record_check(engine, name, extract_checks.REJECTED, size=size, index=None,
                  problems=[Problem.of("second arrival", ExtractConflict(reason))],
                  quarantined_to=where)
    raise ExtractRejected(f"{reason}; moved to {where}")


def _record_check(engine: Engine, name: str, verdict: str, *, size: int,
                  index: ExtractIndex | None, problems: list[Problem],
                  report: QualityReport | None = None, quarantined_to: str | None = None
                  ) -> None:
    """Keep the verdict for the operator console (:mod:`.extract_checks`)."""
    start = index.start if index is not None else None
    extract_checks.record(engine, CheckRecord(
        file_name=name, verdict=verdict, size_bytes=size,
        checked_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        task_number=start.task_number if start else None,
        production_date=start.production_date if start else None,
        previous_date=start.previous_date if start else None,
        persons=len(index.persons) if index is not None else None,
        records=index.person_records if index is not None else None,
        problems=tuple(problems), quarantined_to=quarantined_to,
        expectations=tuple(Expectation(o.name, o.column, o.success, o.unexpected,
                                       o.examples) for o in (report.outcomes if report else ()))))


def record_rejected_arrival(day: dt.date, rejected: ExtractRejected) -> None:
    """Keep the sensor's verdict on a complete but broken file (quarantined before it was
    parsed) for the operator console, like :func:`receive` keeps its own.

    Record 000 was not read, so the production date is the day the file is named for.
    Never masks ``rejected``: if the filter database cannot take the record, that is
    logged and the rejection still fails the task with its rule.
    """
    name = rejected.file_name
    if name is None or rejected.error is None:  # nothing quarantined (several files)
        return
    from sqlalchemy.exc import SQLAlchemyError

    from cpr_abonnement.airflow_side.connections import task_engine
    from cpr_abonnement.errors import CprAbonnementError

    try:
        engine = task_engine()
        try:
            extract_checks.record(engine, CheckRecord(
                file_name=name, verdict=extract_checks.REJECTED,
                checked_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                size_bytes=rejected.size_bytes or 0, production_date=day,
                problems=(Problem.of(rejected.rule or "complete file", rejected.error),),
                quarantined_to=rejected.quarantined_to))
        finally:
            engine.dispose()
    except (CprAbonnementError, SQLAlchemyError):
        log.exception("could not record the rejection of %s for the console", name)


def _log_platform_records(index) -> None:
    """910 (errors) and 997 (receipts) concern the platform's dealings with CPR: never
    forwarded, but logged for the data engineers (product.md §3), PNRs masked."""
    if not any(index.platform_records.values()):
        return
    from cpr_abonnement.extract.reader import iter_records

    for rec in iter_records(index.path):
        if rec.record_type == "910":
            log.warning("910 error record, line %d: %s %s (input key %s)", rec.line_no,
                        rec.field("FEJLNR"), rec.field("FEJLTXT_UDTRAEK").strip(),
                        mask(rec.key))
        elif rec.record_type == "997":
            log.info("997 receipt for a deleted PNR subscription, line %d: %s event %s",
                     rec.line_no, mask(rec.key), rec.field("HAENDELSE"))


# -- filter -----------------------------------------------------------------------------
def filter_day(settings: Settings, received: ReceivedExtract, engine: Engine, *,
               as_of: dt.datetime | None) -> list[DeliveryItem]:
    """Thin the staged extract for every active subscriber; one delivery item each."""
    folder = stage_dir(settings, received.day) / "deltas"
    with tempfile.TemporaryDirectory(prefix="cprsub-") as scratch:
        extract = local_copy(staged(received.extract), Path(scratch))
        local_copy(staged(received.extract + index_store.SUFFIX), Path(scratch))
        need = storage.check_room(settings, engine, extract.stat().st_size)
        log.info("disk guard: the day needs about %.1f MB of staging", need / storage.MB)
        out = local_path(folder, Path(scratch))
        result = filter_extract(extract, engine, out, as_of=as_of,
                                validated_sha256=received.sha256)
        if not is_local(folder):
            for f in result.files:
                for local in (Path(f.path), Path(f.metadata_path)):
                    upload(local, folder / f.subscriber / local.name)
    data = {f.subscriber: str(folder / f.subscriber / f.name) for f in result.files}
    log.info("filtered %s: %d persons, %d subscriber(s), filters as of %s UTC (%s)",
             received.file_name, result.persons, len(result.files),
             result.extract.filters_as_of.isoformat(),
             ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items()))
    return [
        DeliveryItem(subscriber=sub.uuid, name=sub.name, target=delivery.target_of(sub),
                     data=data[sub.uuid], metadata=data[sub.uuid] + ".metadata",
                     file_name=f.name, persons=f.persons, records=f.records, sha256=f.sha256,
                     day=received.day, task_number=received.task_number)
        for sub, f in zip(result.subscribers, result.files, strict=True)
    ]


# -- deliver: tasks/deliver.py (apart, so a delivery process loads no data stack) --------
# -- report -----------------------------------------------------------------------------
def report(received: ReceivedExtract, items: list[DeliveryItem], engine: Engine, *,
           now: dt.datetime) -> DaySummary:
    """Summarise the day from the ledger; mark the extract processed if all delivered."""
    day = received.day
    entries = {e.subscriber_uuid: e for e in ledger.entries(engine, received.task_number,
                                                             day)}
    lines, failed, rows = [], [], []
    for item in items:
        e = entries.get(item.subscriber)
        outcome = e.outcome if e else "NOT_ATTEMPTED"
        if outcome not in ledger.DELIVERED_OUTCOMES:
            failed.append(item.name)
        waited = (f"; waited for service window until "
                  f"{e.window_wait_until.replace(tzinfo=dt.UTC).astimezone(TZ):%H:%M}"
                  if e and e.window_wait_until else "")
        lines.append(f"{item.name} ({item.subscriber}): {item.persons} persons, "
                     f"{item.records} records, {outcome}"
                     + (f" after {e.attempts} attempt(s)" if e else "") + waited)
        reason = ("" if outcome in ledger.DELIVERED_OUTCOMES
                  else short_reason(e.detail) if e else "no attempt was made")
        rows.append(NoteRow(item.name, outcome, item.persons, item.records,
                            item.target.mode if item.target else "-",
                            e.attempts if e else None, waited, reason))
    head = (f"{received.file_name} (produced {day}, previous {received.previous_date}): "
            f"{received.persons} persons; " + (
                f"{len(items) - len(failed)} of {len(items)} subscriber(s) delivered" if items
                else DaySummary.no_subscribers(day, first_registration(engine))))
    if any(received.platform_records.values()):
        head += f"; platform records not forwarded: {received.platform_records}"
    if not failed:
        extract_runs.mark_delivered(engine, received.task_number, day, now)
    # Late pick-ups are the subscriber's, not a failed delivery: shown, not failing the
    # run (the housekeeping DAG alerts about them).
    from cpr_abonnement.health import late_pickups

    late = [f"late pick-up: {x.line()}" for x in late_pickups(engine, day, Settings.from_env())]
    lines += late
    metrics.day_delivered(
        [(e.outcome, e.persons, e.size_bytes) if e else (None, 0, None)
         for e in (entries.get(item.subscriber) for item in items)],
        late_pickups=len(late))
    log.info("%s\n  %s", head, "\n  ".join(lines))
    return DaySummary(head, lines, failed, processed=not failed, rows=rows, remarks=late)


def first_registration(engine: Engine) -> dt.datetime | None:
    """When the first subscriber was registered (None: none is)."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from cpr_abonnement.store.models import Subscriber

    with Session(engine) as s:
        return s.scalar(select(func.min(Subscriber.created_at)))

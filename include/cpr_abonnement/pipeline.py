"""What each task of the ``cpr_abonnement_daily`` DAG does, as plain functions.

The DAG file only wires these together; every function takes its inputs as
arguments (delivery day, settings, database engine) and returns small, PNR-free
dictionaries fit for XCom (paths and counts).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from cpr_abonnement import delivery
from cpr_abonnement.errors import (
    CprAbonnementError,
    DeliveryConflict,
    ExtractError,
    MissingDeliveryTarget,
)
from cpr_abonnement.extract.expectations import run_expectations
from cpr_abonnement.extract.index import scan
from cpr_abonnement.extract.validation import TAIL_BYTES, end_problem, summarise, violations
from cpr_abonnement.pnr import mask, scrub  # scrub: re-exported for alerts
from cpr_abonnement.process import filter_extract
from cpr_abonnement.settings import Settings
from cpr_abonnement.subscriptions import extracts

log = logging.getLogger(__name__)


class ExtractMissing(CprAbonnementError):
    """The day's extract did not arrive before the deadline."""


class ExtractRejected(CprAbonnementError):
    """The extract failed validation and was quarantined."""


class ChainBroken(CprAbonnementError):
    """The extract does not chain onto the last processed one: a day is missing."""


# -- locations ----------------------------------------------------------------------
@dataclass(frozen=True)
class Location:
    """``file:///dir`` or ``sftp://<conn id>/<dir>``."""

    scheme: str
    conn_id: str | None
    directory: str

    @classmethod
    def parse(cls, url: str) -> Location:
        if url.startswith("file://"):
            return cls("file", None, url[len("file://"):])
        if url.startswith("sftp://"):
            conn_id, _, directory = url[len("sftp://"):].partition("/")
            return cls("sftp", conn_id, "/" + directory if directory else ".")
        if url.startswith("/"):
            return cls("file", None, url)
        raise ValueError(f"location {url!r} is neither file:///... nor sftp://<conn id>/...")


def local_dir(url: str) -> Path:
    """The local (or shared-volume) directory of a ``file://`` location."""
    loc = Location.parse(url)
    if loc.scheme != "file":
        raise ValueError(f"{url}: staging and quarantine must be file:// (a shared volume)")
    return Path(loc.directory)


def extract_pattern(day: dt.date, task_number: str | None) -> re.Pattern[str]:
    """CPR's file name for ``day``: ``D<YYMMDD>.L<task>``, matched case-insensitively."""
    task = re.escape(task_number) if task_number else r"\d{6}"
    return re.compile(rf"D{day:%y%m%d}\.L{task}", re.IGNORECASE)


def _listing(loc: Location) -> list[str]:
    if loc.scheme == "file":
        folder = Path(loc.directory)
        return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    return sorted(SFTPHook(ssh_conn_id=loc.conn_id, conn_retry_attempts=1)
                  .list_directory(loc.directory))


# -- 1. sense ---------------------------------------------------------------------------
# A file in the inbound location is either still arriving or complete; only a complete
# file is judged. "Complete" means stable: its size and mtime, as the inbound location
# reports them, unchanged for the settle time. The sensor runs in reschedule mode (a
# new process per poke), so what it saw is kept between pokes in a small JSON file in
# the day's staging folder: name, size, mtime and when *this service* first saw them.
# Only our own clock measures the settle time and the inbound's mtime is only compared
# for equality, so a skewed SFTP server clock cannot make a file look old; the same
# code serves file:// and sftp://. A stable file that ends in a whole 999 record (full
# length, with its line end) is taken; any other stable file is broken, and is
# quarantined with the rule it breaks instead of waiting for the deadline.
@dataclass(frozen=True)
class Observation:
    """One look at an inbound file: size and mtime (for stability) and its last bytes."""

    size: int
    mtime: float
    tail: bytes


@dataclass(frozen=True)
class Sensing:
    """What one poke found: no file, a file still arriving, or a complete file."""

    name: str | None
    complete: bool = False


def find_extract(settings: Settings, day: dt.date, *,
                 now: dt.datetime | None = None) -> str | None:
    """Name of the day's extract once complete, or None while absent or still arriving.

    Raises :class:`ExtractRejected` (after quarantining it) for a file that has stopped
    changing but does not end with a whole 999 record.
    """
    found = sense(settings, day, now=now)
    return found.name if found.complete else None


def sense(settings: Settings, day: dt.date, *, now: dt.datetime | None = None) -> Sensing:
    """Look for the day's extract and say whether it has arrived completely."""
    now = now or dt.datetime.now(dt.UTC)
    loc = Location.parse(settings.inbound)
    pattern = extract_pattern(day, settings.task_number)
    found = [name for name in _listing(loc) if pattern.fullmatch(name)]
    if len(found) > 1:
        raise ExtractRejected(f"several extracts for {day} in {settings.inbound}: "
                              f"{', '.join(found)}; set CPRSUB_TASK_NUMBER")
    if not found:
        return Sensing(None)
    name = found[0]
    seen = _observe(loc, name)
    if not _stable(settings, day, name, seen, now):
        log.info("%s is there (%d bytes) but changed within the last %.0f s, or was "
                 "first seen now: still arriving", name, seen.size, settings.settle_seconds)
        return Sensing(name)
    problem = end_problem(seen.tail, seen.size)
    if problem is not None:
        error = problem.examples[0]
        where = quarantine(settings, name, [f"rule '{problem.rule}': {error}"])
        raise ExtractRejected(
            f"{name} for {day} arrived but is broken (unchanged for "
            f"{settings.settle_seconds:.0f} s), rule '{problem.rule}': {error}; "
            f"moved to {where}")
    return Sensing(name, complete=True)


def _observe(loc: Location, name: str) -> Observation:
    """Size, mtime and last bytes of ``name`` in the inbound location."""
    if loc.scheme == "file":
        with open(Path(loc.directory) / name, "rb") as fh:
            st = os.fstat(fh.fileno())
            fh.seek(max(0, st.st_size - TAIL_BYTES))
            return Observation(st.st_size, st.st_mtime, fh.read(TAIL_BYTES))
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    hook = SFTPHook(ssh_conn_id=loc.conn_id, conn_retry_attempts=1)
    with hook.get_managed_conn() as c, c.open(f"{loc.directory.rstrip('/')}/{name}",
                                              "rb") as fh:
        st = fh.stat()
        fh.seek(max(0, (st.st_size or 0) - TAIL_BYTES))
        return Observation(st.st_size or 0, float(st.st_mtime or 0), fh.read(TAIL_BYTES))


def _stable(settings: Settings, day: dt.date, name: str, seen: Observation,
            now: dt.datetime) -> bool:
    """Whether ``seen`` is what an earlier poke saw at least the settle time ago.

    A first sighting, or any change of size or mtime, (re)starts the clock. With a settle
    time of 0 every file counts as stable at once (demos and tests only).
    """
    if settings.settle_seconds <= 0:
        return True
    state = stage_dir(settings, day) / "inbound-observation.json"
    current = {"name": name, "size": seen.size, "mtime": seen.mtime}
    before = json.loads(state.read_text()) if state.exists() else {}
    if {key: before.get(key) for key in current} == current:
        since = dt.datetime.fromisoformat(before["since"])
        return (now - since).total_seconds() >= settings.settle_seconds
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({**current, "since": now.isoformat()}))
    return False


def extract_deadline(settings: Settings, day: dt.date) -> dt.datetime:
    """When a missing extract becomes an alert: the run time on ``day`` plus the grace."""
    t = dt.time.fromisoformat(settings.delivery_time)
    local = dt.datetime.combine(day, t, tzinfo=ZoneInfo("Europe/Copenhagen"))
    return local + dt.timedelta(hours=settings.deadline_hours)


class RunDateRefused(CprAbonnementError, ValueError):
    """The run is for a day it must not process: a future day, or a ``delivery_day``
    param that contradicts its logical date. Refused at once, never retried."""


def delivery_day(context: dict[str, Any]) -> dt.date:
    """The business date of a run: its data interval's UTC day (see the timetable).

    One rule, so a run never processes a day other than the one the UI shows for it
    (and whose data interval fixes its filter snapshot): the ``delivery_day`` param is
    for runs triggered without a logical date. Given with a logical date (the trigger
    form always fills one in) it must name the same delivery day, else the run is
    refused with :class:`RunDateRefused` saying what to do.
    """
    start = context.get("data_interval_start")
    named = _named_day((context.get("params") or {}).get("delivery_day"))
    if start is None:
        if named is None:
            raise RunDateRefused("this run has no logical date: trigger it with one, or "
                                 "set the delivery_day param (YYYY-MM-DD)")
        return named
    day = start.astimezone(dt.UTC).date()
    if named is not None and named != day:
        logical = context.get("logical_date")
        shown = f"{logical:%Y-%m-%d}" if logical is not None else day
        raise RunDateRefused(
            f"param delivery_day {named} differs from this run's delivery day {day} "
            f"(logical date {shown}); nothing was processed. To process {named}, trigger "
            f"a run with logical date {named} and leave delivery_day empty")
    return day


def _named_day(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise RunDateRefused(f"param delivery_day {value!r} is not a date (YYYY-MM-DD)"
                             ) from exc


def refuse_future(day: dt.date, now: dt.datetime) -> None:
    """Refuse a run for a day after today (Danish date): its extract cannot exist yet,
    and a sensor waiting for it would hold the DAG's only active-run slot for days."""
    today = now.astimezone(ZoneInfo("Europe/Copenhagen")).date()
    if day > today:
        raise RunDateRefused(
            f"delivery day {day} is in the future (today is {today} in Denmark): its "
            f"extract cannot have arrived. The schedule creates its run; for a manual run, "
            f"trigger it on or after {day}")


# -- 2. parse & validate ---------------------------------------------------------------
# -- staging -------------------------------------------------------------------------
# Staging is an ObjectStoragePath, so workers on different machines share a run's files
# through a shared volume (file://, the default) or object storage (s3://, gs://, ...).
# The extract is read and the deltas are written on local disk (memory-mapped and
# streamed); with remote staging they are uploaded and downloaded around that.
def stage_dir(settings: Settings, day: dt.date):
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(settings.staging) / f"{day:%Y-%m-%d}"


def _is_local(path) -> bool:
    return path.protocol in ("", "file", "local")


def _local(path, scratch: Path) -> Path:
    """A local file with the content of staged ``path`` (the file itself when local)."""
    if _is_local(path):
        return Path(path.path)
    target = scratch / path.name
    with path.open("rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return target


def _upload(local: Path, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(local, "rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def receive(settings: Settings, day: dt.date, name: str, engine: Engine, *,
            allow_gap: bool) -> dict[str, Any]:
    """Copy the extract to staging, validate it, check the chain; quarantine if bad."""
    with tempfile.TemporaryDirectory(prefix="cprsub-") as scratch:
        return _receive(settings, day, name, engine, allow_gap=allow_gap,
                        scratch=Path(scratch))


def _receive(settings: Settings, day: dt.date, name: str, engine: Engine, *,
             allow_gap: bool, scratch: Path) -> dict[str, Any]:
    target = stage_dir(settings, day) / "extract" / name
    staged = Path(target.path) if _is_local(target) else scratch / name
    staged.parent.mkdir(parents=True, exist_ok=True)
    loc = Location.parse(settings.inbound)
    if loc.scheme == "file":
        shutil.copyfile(Path(loc.directory) / name, staged)
    else:
        from airflow.providers.sftp.hooks.sftp import SFTPHook

        SFTPHook(ssh_conn_id=loc.conn_id, conn_retry_attempts=1).retrieve_file(
            f"{loc.directory.rstrip('/')}/{name}", str(staged), prefetch=False)

    try:
        index = scan(staged, digest=True)
    except ExtractError as exc:  # not line-based at all
        where = quarantine(settings, name, [str(exc)])
        staged.unlink(missing_ok=True)
        raise ExtractRejected(f"{name} rejected, moved to {where}: {exc}") from exc
    problems = [summarise(v) for v in violations(index, expect_date=day)]
    report = run_expectations(index) if not problems else None
    for outcome in report.warnings if report else []:
        log.warning("data quality (within tolerance): %s", outcome)
    if problems or (report is not None and not report.success):
        lines = [str(p) for p in problems] + (
            [f"data quality: {o}" for o in report.failures] if report else [])
        where = quarantine(settings, name, lines)
        staged.unlink(missing_ok=True)
        raise ExtractRejected(
            f"{name} rejected ({len(lines)} problem(s)), moved to {where}:\n  - "
            + "\n  - ".join(lines))

    _log_platform_records(index)
    start = index.start
    assert start is not None and start.previous_date is not None
    last = extracts.last_processed(engine, start.task_number, before=day)
    if last is not None and last.production_date != start.previous_date:
        message = (f"{name}: PRODDTOFORRIG is {start.previous_date} but the last processed "
                   f"extract of task {start.task_number} was produced {last.production_date}: "
                   f"an extract is missing. Backfill the missing day(s), or re-run with the "
                   f"param allow_gap=true to accept the gap.")
        if not allow_gap:
            raise ChainBroken(message)
        log.warning("chain gap accepted by allow_gap: %s", message)
    if not _is_local(target):
        _upload(staged, target)
    return {
        "day": day.isoformat(), "file_name": name, "extract": str(target),
        "sha256": index.sha256, "task_number": start.task_number,
        "previous_date": str(start.previous_date), "persons": len(index.persons),
        "records": index.person_records, "platform_records": index.platform_records,
    }


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


def quarantine(settings: Settings, name: str, reasons: list[str]) -> str:
    """Move the inbound file, intact, to quarantine with a ``.reason.txt`` beside it."""
    folder = local_dir(settings.quarantine)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"{name}.{stamp}"
    loc = Location.parse(settings.inbound)
    if loc.scheme == "file":
        shutil.move(str(Path(loc.directory) / name), target)
    else:
        from airflow.providers.sftp.hooks.sftp import SFTPHook

        hook = SFTPHook(ssh_conn_id=loc.conn_id, conn_retry_attempts=1)
        with hook.get_managed_conn() as sftp:
            source = f"{loc.directory.rstrip('/')}/{name}"
            sftp.get(source, str(target))
            quarantined = f"{loc.directory.rstrip('/')}/quarantine"
            delivery.ensure_dir(sftp, quarantined)
            sftp.rename(source, f"{quarantined}/{target.name}")
    target.with_name(target.name + ".reason.txt").write_text(
        "\n".join(scrub(r) for r in reasons) + "\n", encoding="utf-8")
    return str(target)


# -- 3. filter --------------------------------------------------------------------------
def filter_day(settings: Settings, received: dict[str, Any], engine: Engine, *,
               as_of: dt.datetime | None) -> list[dict[str, Any]]:
    """Thin the staged extract for every active subscriber; one XCom item each."""
    from airflow.sdk import ObjectStoragePath

    day = dt.date.fromisoformat(received["day"])
    staged = stage_dir(settings, day) / "deltas"
    with tempfile.TemporaryDirectory(prefix="cprsub-") as scratch:
        extract = _local(ObjectStoragePath(received["extract"]), Path(scratch))
        out = Path(staged.path) if _is_local(staged) else Path(scratch) / "deltas"
        result = filter_extract(extract, engine, out, as_of=as_of,
                                validated_sha256=received["sha256"])
        if not _is_local(staged):
            for f in result.files:
                for local in (Path(f.path), Path(f.metadata_path)):
                    _upload(local, staged / f.subscriber / local.name)
    stage = {f.subscriber: staged / f.subscriber / f.name for f in result.files}
    log.info("filtered %s: %d persons, %d subscriber(s), filters as of %s UTC (%s)",
             received["file_name"], result.persons, len(result.files),
             result.extract.filters_as_of.isoformat(),
             ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items()))
    return [
        {"subscriber": sub.uuid, "name": sub.name, "conn_id": sub.sftp_conn_id,
         "remote_dir": sub.remote_dir, "data": str(stage[sub.uuid]),
         "metadata": str(stage[sub.uuid]) + ".metadata",
         "file_name": f.name, "persons": f.persons, "records": f.records, "sha256": f.sha256,
         "day": received["day"], "task_number": received["task_number"]}
        for sub, f in zip(result.subscribers, result.files, strict=True)
    ]


# -- 4. deliver -------------------------------------------------------------------------
def deliver_one(item: dict[str, Any], engine: Engine, *, now: dt.datetime) -> dict[str, Any]:
    """Deliver one subscriber's files and record the attempt in the ledger.

    The attempt is counted before anything is sent, so an attempt whose process is
    killed mid-upload still shows in the ledger (as ``STARTED``, not delivered).
    """
    target = f"sftp://{item['conn_id']}/{item['remote_dir']}" if item["conn_id"] else "-"
    row = dict(task_number=item["task_number"],
               production_date=dt.date.fromisoformat(item["day"]),
               subscriber_uuid=item["subscriber"], file_name=item["file_name"],
               sha256=item["sha256"], persons=item["persons"], records=item["records"],
               target=target, now=now)
    extracts.start_delivery(engine, **row)

    def record(outcome: str, detail: str) -> None:
        extracts.finish_delivery(engine, **row, outcome=outcome, detail=scrub(detail))

    try:
        if not item["conn_id"]:
            raise MissingDeliveryTarget("the subscriber has no SFTP connection id",
                                subscriber=item["name"], file_name=item["file_name"])
        from airflow.sdk import ObjectStoragePath

        with tempfile.TemporaryDirectory(prefix="cprsub-") as scratch:
            files = [_local(ObjectStoragePath(item[k]), Path(scratch))
                     for k in ("data", "metadata")]
            outcomes = delivery.deliver(item["conn_id"], item["remote_dir"], files,
                                        subscriber=item["name"])
    except DeliveryConflict as exc:
        record("CONFLICT", str(exc))
        raise
    except Exception as exc:
        record("FAILED", f"{type(exc).__name__}: {exc}")
        raise
    outcome = "ALREADY_DELIVERED" if all(o.already_there for o in outcomes) else "DELIVERED"
    record(outcome, ", ".join(f"{o.name} ({o.nbytes} bytes)" for o in outcomes))
    log.info("delivery subscriber=%s file=%s records=%d sha256=%s outcome=%s target=%s",
             item["subscriber"], item["file_name"], item["records"], item["sha256"], outcome,
             target)
    return {"subscriber": item["subscriber"], "outcome": outcome}


# -- 5. report --------------------------------------------------------------------------
def report(received: dict[str, Any], items: list[dict[str, Any]], engine: Engine, *,
           now: dt.datetime) -> dict[str, Any]:
    """Summarise the day from the ledger; mark the extract processed if all delivered."""
    day = dt.date.fromisoformat(received["day"])
    entries = {e.subscriber_uuid: e for e in extracts.ledger(engine, received["task_number"],
                                                             day)}
    lines, failed = [], []
    for item in items:
        e = entries.get(item["subscriber"])
        outcome = e.outcome if e else "NOT_ATTEMPTED"
        if outcome not in extracts.DELIVERED_OUTCOMES:
            failed.append(item["name"])
        lines.append(f"{item['name']} ({item['subscriber']}): {item['persons']} persons, "
                     f"{item['records']} records, {outcome}"
                     + (f" after {e.attempts} attempt(s)" if e else ""))
    head = (f"{received['file_name']} (produced {day}, previous {received['previous_date']}): "
            f"{received['persons']} persons; {len(items) - len(failed)} of {len(items)} "
            f"subscriber(s) delivered")
    platform = received.get("platform_records") or {}
    if any(platform.values()):
        head += f"; platform records not forwarded: {platform}"
    if not failed:
        extracts.mark_delivered(engine, received["task_number"], day, now)
    summary = {"summary": head, "subscribers": lines, "failed": failed,
               "processed": not failed}
    log.info("%s\n  %s", head, "\n  ".join(lines))
    return summary


def note(summary: dict[str, Any], limit: int = 1000) -> str:
    """The run's note in the UI: the summary line, then one line per subscriber."""
    text = "\n".join([summary["summary"], *summary["subscribers"]])
    return text if len(text) <= limit else text[: limit - 2] + " …"

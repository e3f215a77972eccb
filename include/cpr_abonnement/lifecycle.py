"""How long each copy of CPR data lives in this service, and its removal.

Every working day brings the day's change extract and each subscriber's delta; kept for
ever they fill the shared volume within weeks and hold personal data longer than any
purpose needs (storage limitation). The daily housekeeping DAG applies one rule per
copy (docs/data-lifecycle.md gives the reasons and the defaults):

* **staged extract** (``<staging>/<day>/extract/``: the file, its index, the sensor's
  notes): ``CPRSUB_STAGING_RETENTION_DAYS`` (30) after it was staged, the window in which
  a re-run or a subscriber's re-delivery may need it (the same as pick-up retention).
  The processed extract has already left the inbound folder: this copy is its archive.
  A tombstone (:data:`TOMBSTONE`) stays, so a re-run of that day says what happened;
* **deltas** (``<staging>/<day>/deltas/<subscriber>/``): once the ledger says the file
  was delivered (pushed and verified, or placed for pick-up), plus
  ``CPRSUB_DELTA_GRACE_DAYS`` (3); a delta not yet delivered stays whatever its age.
  They can be made again, byte for byte, from the staged extract and the day's filter
  snapshot;
* **quarantined files** and their reasons: ``CPRSUB_QUARANTINE_RETENTION_DAYS`` (90)
  after they were quarantined, long enough to investigate.

Each rule compares an instant with ``now`` to the second and removes nothing younger.
Every removal is audited (operation :data:`OPERATION`: which copy, which day, how many
bytes, which rule) and logged; file names never hold a PNR, but they are scrubbed anyway.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from cpr_abonnement.inbound import local_dir
from cpr_abonnement.masking import scrub
from cpr_abonnement.records.ledger import DELIVERED_OUTCOMES
from cpr_abonnement.settings import Settings
from cpr_abonnement.store.db import writing
from cpr_abonnement.store.models import AuditEntry, Delivery, ExtractRun, ReplicaLookup

log = logging.getLogger(__name__)

OPERATION = "RetentionRemoval"
#: Left in a day's staging folder when its extract is removed.
TOMBSTONE = "extract-removed.json"
#: The reason file quarantine writes beside each file.
REASON_SUFFIX = ".reason.txt"


@dataclass(frozen=True)
class Removal:
    """One copy that has outlived its rule."""

    copy: str           # "staged extract", "delta", "quarantined file"
    path: Path          # a file or a folder
    day: dt.date | None
    rule: str           # the setting and its value, e.g. "CPRSUB_STAGING_RETENTION_DAYS=30"
    since: dt.datetime  # naive UTC: the instant the rule counts from

    @property
    def size(self) -> int:
        return _size(self.path)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _mtime(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(tzinfo=None)


def _day_folders(url: str) -> Iterator[tuple[dt.date, Path]]:
    """The run folders of staging ``url``; none for object storage (``s3://``...), whose
    lifecycle rules are the bucket's (docs/data-lifecycle.md)."""
    try:
        staging = local_dir(url)
    except ValueError:
        log.warning("retention: staging %s is not a local folder; set the bucket's "
                    "lifecycle rules instead", url)
        return
    for folder in sorted(staging.iterdir()) if staging.is_dir() else ():
        try:
            yield dt.date.fromisoformat(folder.name), folder
        except ValueError:
            continue  # not a run's folder


def staged_extracts(settings: Settings, now: dt.datetime) -> list[Removal]:
    """Day folders whose extract was staged more than the retention ago."""
    limit = now - dt.timedelta(days=settings.staging_retention_days)
    rule = f"CPRSUB_STAGING_RETENTION_DAYS={settings.staging_retention_days:g}"
    found = []
    for day, folder in _day_folders(settings.staging):
        extract = folder / "extract"
        files = [p for p in extract.iterdir() if p.is_file()] if extract.is_dir() else []
        if files and (since := max(map(_mtime, files))) < limit:
            found.append(Removal("staged extract", extract, day, rule, since))
    return found


def delivered_deltas(settings: Settings, engine: Engine, now: dt.datetime) -> list[Removal]:
    """Subscribers' delta folders whose delivery the ledger confirms, past the grace."""
    limit = now - dt.timedelta(days=settings.delta_grace_days)
    rule = f"delivered + CPRSUB_DELTA_GRACE_DAYS={settings.delta_grace_days:g}"
    with Session(engine) as s:
        delivered = {(day, uuid): at for day, uuid, at in s.execute(
            select(ExtractRun.production_date, Delivery.subscriber_uuid, Delivery.delivered_at)
            .join(ExtractRun, Delivery.extract_run_id == ExtractRun.id)
            .where(Delivery.outcome.in_(DELIVERED_OUTCOMES),
                   Delivery.delivered_at.is_not(None)))}
    found = []
    for day, folder in _day_folders(settings.staging):
        deltas = folder / "deltas"
        for sub in sorted(deltas.iterdir()) if deltas.is_dir() else ():
            at = delivered.get((day, sub.name))
            if at is not None and at < limit:
                found.append(Removal("delta", sub, day, rule, at))
    return found


def quarantined(settings: Settings, now: dt.datetime) -> list[Removal]:
    """Quarantined files (with their reasons) quarantined more than the retention ago,
    judged by the reason file quarantine wrote then (the file keeps its own mtime)."""
    limit = now - dt.timedelta(days=settings.quarantine_retention_days)
    rule = f"CPRSUB_QUARANTINE_RETENTION_DAYS={settings.quarantine_retention_days:g}"
    folder = local_dir(settings.quarantine)
    found = []
    for reason in sorted(folder.glob(f"*{REASON_SUFFIX}")) if folder.is_dir() else ():
        if (since := _mtime(reason)) < limit:
            kept = reason.with_name(reason.name.removesuffix(REASON_SUFFIX))
            for path in (kept, reason):
                if path.exists():
                    found.append(Removal("quarantined file", path, None, rule, since))
    return found


def due(settings: Settings, engine: Engine, now: dt.datetime) -> list[Removal]:
    """Everything past its rule at ``now`` (naive UTC)."""
    return [*staged_extracts(settings, now), *delivered_deltas(settings, engine, now),
            *quarantined(settings, now)]


def apply(settings: Settings, engine: Engine, now: dt.datetime, caller: str
          ) -> list[Removal]:
    """Remove what is :func:`due`, audit and log each removal; the removals."""
    removals = due(settings, engine, now)
    with Session(engine) as s, s.begin():
        for r in removals:
            size = r.size
            if r.copy == "staged extract":
                _tombstone(r, now)
            if r.path.is_dir():
                shutil.rmtree(r.path)
            else:
                r.path.unlink(missing_ok=True)
            s.add(AuditEntry(at=now, caller=caller, subscriber_uuid=None, operation=OPERATION,
                             result="REMOVED", arguments=json.dumps({
                                 "copy": r.copy, "path": scrub(str(r.path)),
                                 "day": r.day.isoformat() if r.day else None, "bytes": size,
                                 "rule": r.rule, "since": r.since.isoformat()})))
            log.info("retention: removed %s %s (%d bytes, day %s): %s", r.copy,
                     scrub(str(r.path)), size, r.day or "-", r.rule)
    return removals


def _tombstone(removal: Removal, now: dt.datetime) -> None:
    names = sorted(p.name for p in removal.path.iterdir() if p.is_file())
    (removal.path.parent / TOMBSTONE).write_text(json.dumps({
        "files": names, "removed_at": now.isoformat(timespec="seconds"),
        "rule": removal.rule}))


def removed_extract(settings: Settings, day: dt.date) -> dict | None:
    """What retention left of the day's staged extract (its tombstone), if it ran."""
    try:
        tomb = local_dir(settings.staging) / f"{day:%Y-%m-%d}" / TOMBSTONE
    except ValueError:  # object storage: no tombstones
        return None
    return json.loads(tomb.read_text()) if tomb.is_file() else None


def forget_lookups(engine: Engine, cutoff: dt.datetime, *, caller: str, now: dt.datetime,
                  rule: str) -> int:
    """Remove the person look-up log's rows older than ``cutoff`` (its lifetime,
    ``CPRSUB_LOOKUP_LOG_DAYS``), audited as one removal; how many."""
    with writing(engine) as s:
        gone = s.execute(delete(ReplicaLookup).where(ReplicaLookup.looked_up_at < cutoff)
                         ).rowcount or 0
        if gone:
            s.add(AuditEntry(at=now, caller=caller, subscriber_uuid=None,
                             operation=OPERATION, result="REMOVED",
                             arguments=json.dumps({"copy": "look-up log rows", "rows": gone,
                                                   "before": cutoff.isoformat(),
                                                   "rule": rule})))
    return gone

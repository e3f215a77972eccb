"""The volumes CPR data lives on: how full they are, and whether a day fits.

A full staging volume stops the service in the middle of a day (a half-written delta,
every later task failing), so the filter step asks first (:func:`check_room`): the
day needs about the extract's size times the share its subscribers' deltas took of the
last extracts (``records delivered / records in the extract``, from the ledger; 1.0
before there is a history), and ``CPRSUB_DISK_RESERVE_PERCENT`` of the volume stays free
besides. Refused, the task fails at once and alerts, before writing anything.

:func:`volumes` is what ``cprsub health`` and the console show of each place: size,
free space and its oldest file (retention's effect, at a glance).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from cpr_abonnement.errors import DiskSpaceLow
from cpr_abonnement.inbound import local_dir
from cpr_abonnement.settings import Settings
from cpr_abonnement.store.models import Delivery, ExtractRun

#: The runs whose delivered share the estimate takes (the largest of them).
HISTORY_RUNS = 10
MB = 1024 * 1024


@dataclass(frozen=True)
class VolumeState:
    """One place CPR data lives, as the file system reports it."""

    name: str
    path: str
    total: int
    free: int
    oldest: str | None
    #: Naive UTC modification time of the oldest file, None when empty.
    oldest_at: dt.datetime | None

    def line(self, now: dt.datetime) -> str:
        used = 100 * (self.total - self.free) / self.total if self.total else 0
        oldest = ("empty" if self.oldest_at is None else
                  f"oldest file {self.oldest_at:%Y-%m-%d} "
                  f"({(now - self.oldest_at).days} day(s))")
        return (f"{self.name} {self.path}: {self.free / MB:,.0f} MB free of "
                f"{self.total / MB:,.0f} MB ({used:.0f}% used), {oldest}")


def _oldest(folder: Path) -> tuple[str | None, dt.datetime | None]:
    oldest: tuple[float, str] | None = None
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                mtime = os.lstat(os.path.join(root, name)).st_mtime
            except OSError:
                continue  # removed while we looked
            if oldest is None or mtime < oldest[0]:
                oldest = (mtime, os.path.relpath(os.path.join(root, name), folder))
    if oldest is None:
        return None, None
    return oldest[1], dt.datetime.fromtimestamp(oldest[0], dt.UTC).replace(tzinfo=None)


def volumes(settings: Settings) -> list[VolumeState]:
    """Inbound, staging, quarantine and pick-up, where they are local folders."""
    places = [("inbound", settings.inbound), ("staging", settings.staging),
              ("quarantine", settings.quarantine), ("pickup", settings.pickup_root)]
    found = []
    for name, url in places:
        try:
            folder = Path(url) if url.startswith("/") else local_dir(url)
        except ValueError:
            continue  # an SFTP inbound, object-storage staging: not ours to measure
        if not folder.is_dir():
            continue
        usage = shutil.disk_usage(folder)
        found.append(VolumeState(name, str(folder), usage.total, usage.free,
                                 *_oldest(folder)))
    return found


def delivered_share(engine: Engine) -> float:
    """The largest share of an extract the subscribers' deltas took over the last
    :data:`HISTORY_RUNS` runs: records delivered to all subscribers / the extract's
    records (1.0 without a history)."""
    with Session(engine) as s:
        rows = s.execute(
            select(ExtractRun.records, func.sum(Delivery.records))
            .join(Delivery, Delivery.extract_run_id == ExtractRun.id)
            .group_by(ExtractRun.id, ExtractRun.records)
            .order_by(ExtractRun.production_date.desc()).limit(HISTORY_RUNS)).all()
    shares = [delivered / records for records, delivered in rows if records]
    return max(shares, default=1.0)


def check_room(settings: Settings, engine: Engine, extract_bytes: int, *,
               folder: Path | None = None) -> int:
    """Raise :class:`DiskSpaceLow` when filtering an extract of ``extract_bytes`` would
    leave less than the reserve free on the staging volume; the estimate, in bytes."""
    if folder is None:
        try:
            folder = local_dir(settings.staging)
        except ValueError:
            return 0  # object storage: no volume to fill
    share = delivered_share(engine)
    need = int(extract_bytes * share)
    usage = shutil.disk_usage(folder)
    reserve = int(usage.total * settings.disk_reserve_percent / 100)
    if usage.free - need < reserve:
        raise DiskSpaceLow(
            f"staging volume {folder} has {usage.free / MB:,.1f} MB free; the day needs "
            f"about {need / MB:,.1f} MB (extract {extract_bytes / MB:,.1f} MB x share "
            f"{share:.2f} delivered of the last extracts) and "
            f"CPRSUB_DISK_RESERVE_PERCENT={settings.disk_reserve_percent:g} "
            f"({reserve / MB:,.1f} MB) stays free: nothing was filtered. Free space "
            "(retention: CPRSUB_STAGING_RETENTION_DAYS, CPRSUB_DELTA_GRACE_DAYS) or grow "
            "the volume, then clear filter_for_subscribers (runbook: disk space)")
    return need

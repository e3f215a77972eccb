"""Retention of the pick-up storage: files older than ``CPRSUB_PICKUP_RETENTION_DAYS``
leave the accounts' ``IN/`` folders (the daily housekeeping DAG).

Each file is judged by its own age (its modification time: the delivery writes it under
a temporary name and renames it, so that is when it was placed), never by what else is
in the folder: a younger file is never removed. Only regular files directly in
``<root>/<account>/IN/`` are considered (no links, no folders). A removed data file is
recorded in the ledger as removed by retention.
"""

from __future__ import annotations

import datetime as dt
import logging
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.pickup.server import INBOX

log = logging.getLogger(__name__)


@dataclass
class RetentionResult:
    removed: list[str] = field(default_factory=list)   # "<account>/IN/<file>"
    kept: int = 0
    unmatched: int = 0

    def summary(self) -> str:
        return (f"{len(self.removed)} file(s) older than retention removed, {self.kept} "
                f"kept, {self.unmatched} removed data file(s) without a ledger row")


def expired(root: Path, *, now: dt.datetime, days: int) -> list[tuple[str, Path]]:
    """(account, file) of every regular file in an ``IN/`` older than ``days``."""
    limit = now.timestamp() - days * 86400
    found = []
    for inbox in sorted(Path(root).glob(f"*/{INBOX}")):
        if inbox.is_symlink() or not inbox.is_dir():
            continue
        for f in sorted(inbox.iterdir()):
            st = f.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_mtime < limit:
                found.append((inbox.parent.name, f))
    return found


def apply_retention(root: Path, engine, *, now: dt.datetime, days: int) -> RetentionResult:
    """Remove the expired files and record the removals (see module docstring)."""
    from cpr_abonnement.records.ledger import record_pickup_event

    if days < 1:
        raise ValueError(f"CPRSUB_PICKUP_RETENTION_DAYS must be at least 1, not {days}")
    result = RetentionResult()
    old = expired(root, now=now, days=days)
    for account, f in old:
        f.unlink(missing_ok=True)
        result.removed.append(f"{account}/{INBOX}/{f.name}")
        log.info("retention: removed %s/%s/%s (older than %d days)", account, INBOX,
                 scrub(f.name), days)
        if not f.name.endswith(".metadata") and not record_pickup_event(
                engine, account=account, file_name=f.name, event="removed",
                at=now, by="retention"):
            result.unmatched += 1
    result.kept = sum(1 for p in Path(root).glob(f"*/{INBOX}/*") if p.is_file())
    return result

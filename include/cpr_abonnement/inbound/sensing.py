"""Has the day's extract arrived completely? Written once, for every inbound location.

A file in the inbound location is either still arriving or complete; only a complete
file is judged. "Complete" means stable: its size and mtime, as the inbound location
reports them, unchanged for the settle time. The sensor runs in reschedule mode (a
new process per poke), so what it saw is kept between pokes in a small JSON file in
the day's staging folder: name, size, mtime and when *this service* first saw them.
Only our own clock measures the settle time and the inbound's mtime is only compared
for equality, so a skewed SFTP server clock cannot make a file look old. A stable file
that ends in a whole 999 record (full length, with its line end) is taken; any other
stable file is broken, and is quarantined with the rule it breaks instead of waiting
for the deadline.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from cpr_abonnement import lifecycle
from cpr_abonnement.errors import ExtractError, ExtractRejected, ExtractRetired
from cpr_abonnement.extract.naming import name_pattern
from cpr_abonnement.extract.validation import TAIL_BYTES, end_problem
from cpr_abonnement.inbound import open_location
from cpr_abonnement.inbound.base import Observation
from cpr_abonnement.inbound.quarantine import quarantine
from cpr_abonnement.settings import Settings
from cpr_abonnement.staging import stage_dir

log = logging.getLogger(__name__)

#: The file in the day's staging folder that keeps what earlier pokes saw.
OBSERVATION_FILE = "inbound-observation.json"


@dataclass(frozen=True)
class Sensing:
    """What one poke found: no file, a file still arriving, or a complete file."""

    name: str | None
    complete: bool = False
    #: When this service first saw the file unchanged since (aware UTC; the file's
    #: arrival for the deadline margin metric): the poke's time with no settle time.
    first_seen: dt.datetime | None = None


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
    location = open_location(settings.inbound)
    pattern = name_pattern(day, settings.task_number)
    found = [name for name in location.list_files() if pattern.fullmatch(name)]
    if len(found) > 1:
        raise ExtractRejected(f"several extracts for {day} in {settings.inbound}: "
                              f"{', '.join(found)}; set CPRSUB_TASK_NUMBER")
    if not found:
        return _archived(settings, day, pattern)
    name = found[0]
    seen = location.observe(name, TAIL_BYTES)
    since = _stable_since(settings, day, name, seen, now)
    if since is None:
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
            f"moved to {where}", file_name=name, rule=problem.rule,
            error=_located(error, Path(where)), quarantined_to=where, size_bytes=seen.size)
    return Sensing(name, complete=True, first_seen=since)


def _archived(settings: Settings, day: dt.date, pattern) -> Sensing:
    """No file in the inbound folder: a re-run of a day already received finds its
    extract in staging, where it was archived when it left the inbound folder. Once
    retention has removed that too, the re-run fails at once saying so and how to bring
    the file back, instead of waiting for a file that will not come."""
    folder = stage_dir(settings, day) / "extract"
    staged = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    for name in staged:
        if pattern.fullmatch(name):
            log.info("%s was received before: taking its archived copy in staging", name)
            return Sensing(name, complete=True)
    removed = lifecycle.removed_extract(settings, day)
    if removed is not None:
        files = ", ".join(removed["files"])
        raise ExtractRetired(
            f"the extract for {day} ({files}) was removed from staging at "
            f"{removed['removed_at']} UTC by retention ({removed['rule']}); to run the day "
            f"again, put the original file back into {settings.inbound} (from CPR or the "
            "backup of the inbound volume) and clear wait_for_extract (runbook: re-running "
            "a day whose extract retention removed)", file_name=files,
            removed_at=removed["removed_at"])
    return Sensing(None)


def _located(error: ExtractError, kept: Path) -> ExtractError:
    """``error`` with its line number: the sensor reads only the file's tail, so a broken
    end record is located by counting the lines of the quarantined (local) copy."""
    if error.line is not None or error.record_type != "999":
        return error
    lines, last = 0, b""
    with open(kept, "rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last not in (b"", b"\n"):
        lines += 1  # a last line without its line end
    return type(error)(error.detail, line=lines or None, record_type=error.record_type,
                       field=error.field)


def _stable_since(settings: Settings, day: dt.date, name: str, seen: Observation,
                  now: dt.datetime) -> dt.datetime | None:
    """Since when ``seen`` has been unchanged, if an earlier poke saw it at least the
    settle time ago; None while it is not stable.

    A first sighting, or any change of size or mtime, (re)starts the clock. With a settle
    time of 0 every file counts as stable at once, since ``now`` (demos and tests only).
    """
    if settings.settle_seconds <= 0:
        return now
    state = stage_dir(settings, day) / OBSERVATION_FILE
    current = {"name": name, "size": seen.size, "mtime": seen.mtime}
    before = json.loads(state.read_text()) if state.exists() else {}
    if {key: before.get(key) for key in current} == current:
        since = dt.datetime.fromisoformat(before["since"])
        return since if (now - since).total_seconds() >= settings.settle_seconds else None
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({**current, "since": now.isoformat()}))
    return None

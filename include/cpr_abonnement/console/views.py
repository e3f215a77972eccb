"""View models of the operator console, read from the filter database.

Pure reads: each function takes an engine (and the day it is "today", so tests and
pages agree on time) and returns frozen dataclasses, which the pages render and the
JSON endpoints serialise as they are. No full PNR can leave here: the ledger and the
extract registry hold none, and every free text (ledger details, audit arguments,
check messages) is scrubbed on the way out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from cpr_abonnement import filters
from cpr_abonnement.console import history
from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.delivery import modes
from cpr_abonnement.health import is_late, pickup_cutoff
from cpr_abonnement.identities import expiry
from cpr_abonnement.records import extract_checks
from cpr_abonnement.records.ledger import DELIVERED_OUTCOMES, STARTED
from cpr_abonnement.records.reasons import short_reason
from cpr_abonnement.settings import Settings
from cpr_abonnement.store.db import as_naive_utc
from cpr_abonnement.store.models import (
    AuditEntry,
    Certificate,
    Delivery,
    ExtractRun,
    SshKey,
    Subscriber,
)

#: Delivery days per page of the deliveries matrix: two working weeks, what fits beside
#: the subscriber column in Airflow's UI on a 1,440-pixel screen without scrolling.
PAGE_DAYS = 10
#: Delivery days the production-date chain on the Extracts page shows.
TIMELINE_DAYS = 30
#: How many characters of a SHA-256 the matrix shows (enough to compare by eye).
SHA_PREFIX = 12

#: Where each (delivery day, subscriber name) delivery's task log is, for the days
#: asked; supplied by the Airflow side (:mod:`cpr_abonnement.airflow_side.console_access`).
TaskLinks = Callable[[list[dt.date]], Mapping[tuple[dt.date, str], str]]


def to_json(value: Any) -> Any:
    """A view model as JSON-ready data (dates as ISO strings, tuples as lists)."""
    if hasattr(value, "__dataclass_fields__"):
        return to_json(asdict(value))
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, dt.date) else k.isoformat(): to_json(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


# -- deliveries ------------------------------------------------------------------------
#: How much of a failure's reason a cell and the summary line show (the rest in the
#: cell's tooltip and the task log).
REASON_CHARS = 90


@dataclass(frozen=True)
class Cell:
    """One subscriber's delivery of one day's extract, as its ledger row says."""

    file_name: str
    outcome: str
    persons: int
    records: int
    attempts: int
    sha256: str
    mode: str
    size_bytes: int | None
    detail: str
    #: Pick-up only: True once downloaded (or removed by the subscriber), else False.
    picked_up: bool | None
    #: Pick-up only: delivered, still waiting past ``CPRSUB_PICKUP_ALERT_DAYS``.
    late: bool
    link: str | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome in DELIVERED_OUTCOMES

    @property
    def reason(self) -> str:
        """Why an undelivered cell is not delivered, short (the ledger's detail, first
        line); empty when delivered."""
        return "" if self.delivered else short_reason(self.detail, REASON_CHARS)

    @property
    def state(self) -> str:
        """The cell's colour: ``ok``, ``late``, ``running`` or ``failed``."""
        if self.late:
            return "late"
        if self.delivered:
            return "ok"
        return "running" if self.outcome == STARTED else "failed"


@dataclass(frozen=True)
class MatrixRow:
    uuid: str
    name: str
    mode: str
    active: bool
    cells: dict[dt.date, Cell]


@dataclass(frozen=True)
class Matrix:
    """Subscribers × delivery days, newest day first; ``page`` 0 ends today."""

    days: list[dt.date]
    rows: list[MatrixRow]
    page: int
    failed_only: bool = False
    late_only: bool = False
    subscriber: str | None = None
    #: Every subscriber (uuid, name) for the filter's choice list.
    choices: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str | None:
        """One line about the newest day with deliveries: how many of how many were
        delivered, and who was not, with why (``04.12: 6 of 7 delivered — Aalborg
        FAILED: connection refused``)."""
        for day in self.days:
            cells = [(row.name, row.cells[day]) for row in self.rows if day in row.cells]
            if not cells:
                continue
            done = sum(c.delivered for _, c in cells)
            line = f"{day:%d.%m.%Y}: {done} of {len(cells)} delivered"
            failed = [f"{name} {c.outcome}" + (f": {c.reason}" if c.reason else "")
                      for name, c in cells if not c.delivered]
            return line + (" — " + "; ".join(failed) if failed else "")
        return None


def page_days(settings: Settings, today: dt.date, page: int, size: int = PAGE_DAYS
              ) -> list[dt.date]:
    """The ``page``-th block of ``size`` delivery days ending on or before ``today``,
    newest first (page 0 is the latest)."""
    calendar = settings.calendar()
    day = today if calendar.is_delivery_day(today) else calendar.previous_delivery_day(today)
    for _ in range(page * size):
        day = calendar.previous_delivery_day(day)
    days = [day]
    while len(days) < size:
        days.append(calendar.previous_delivery_day(days[-1]))
    return days




def undelivered_links(undelivered: list[tuple[str, str]], links: TaskLinks | None
                      ) -> list[tuple[str, str, str | None]]:
    """Health's undelivered (day, subscriber) pairs with the task log of each, where
    Airflow has one (none when the run stopped before delivering)."""
    days = sorted({dt.date.fromisoformat(day) for day, _ in undelivered}, reverse=True)
    where = dict(links(days)) if links and days else {}
    return [(day, name, where.get((dt.date.fromisoformat(day), name)))
            for day, name in undelivered]


def delivery_matrix(engine: Engine, settings: Settings, *, today: dt.date, page: int = 0,
                    failed_only: bool = False, late_only: bool = False,
                    subscriber: str | None = None, links: TaskLinks | None = None) -> Matrix:
    """The deliveries page: one row per subscriber that was active in, or has a ledger
    row in, the page's days; ``failed_only`` keeps rows with an undelivered cell,
    ``late_only`` rows with a late pick-up, ``subscriber`` one subscriber's row."""
    days = page_days(settings, today, page)
    cutoff = pickup_cutoff(today, settings)
    with Session(engine) as s:
        subs = list(s.scalars(select(Subscriber).order_by(Subscriber.name)))
        ledger = s.execute(
            select(Delivery, ExtractRun.production_date).join(ExtractRun)
            .where(ExtractRun.production_date.between(days[-1], days[0]))).all()
    where = dict((links or (lambda _: {}))(days))
    names = {sub.uuid: sub.name for sub in subs}
    cells: dict[str, dict[dt.date, Cell]] = {}
    for row, day in ledger:
        cells.setdefault(row.subscriber_uuid, {})[day] = _cell(
            row, day, cutoff, where.get((day, names.get(row.subscriber_uuid, ""))))
    rows = [MatrixRow(sub.uuid, sub.name, modes.label(sub.delivery_mode),
                      sub.active, cells.get(sub.uuid, {}))
            for sub in subs
            if sub.uuid in cells or (sub.active and sub.created_at.date() <= days[0])]
    if subscriber:
        rows = [r for r in rows if r.uuid == subscriber]
    if failed_only:
        rows = [r for r in rows if any(not c.delivered for c in r.cells.values())]
    if late_only:
        rows = [r for r in rows if any(c.late for c in r.cells.values())]
    return Matrix(days, rows, page, failed_only, late_only, subscriber,
                  [(sub.uuid, sub.name) for sub in subs])


def _cell(row: Delivery, day: dt.date, cutoff: dt.date, link: str | None) -> Cell:
    spec = modes.of_target(row.target)
    mode = spec.label if spec else row.target.partition("://")[0]
    picked = None
    late = False
    if spec is not None and spec.has_account:
        picked = row.picked_up_at is not None or row.removed_by == "subscriber"
        late = (row.outcome in DELIVERED_OUTCOMES and row.picked_up_at is None
                and row.removed_at is None and is_late(day, row.available_at, cutoff))
    return Cell(row.file_name, row.outcome, row.persons, row.records, row.attempts,
                row.sha256[:SHA_PREFIX], mode, row.size_bytes, scrub(row.detail)[:500],
                picked, late, link)


@dataclass(frozen=True)
class DayVolume:
    """What one subscriber was delivered on one day (the plot's stacked bars)."""

    day: dt.date
    subscriber: str
    persons: int
    size_bytes: int
    #: The subscriber's registration number (its row id): what its plot colour follows.
    number: int


def delivered_volumes(engine: Engine, days: list[dt.date]) -> list[DayVolume]:
    """Persons and bytes per subscriber and day, delivered outcomes only."""
    with Session(engine) as s:
        rows = s.execute(
            select(ExtractRun.production_date, Subscriber.name, Delivery.persons,
                   Delivery.size_bytes, Subscriber.id)
            .join(ExtractRun, ExtractRun.id == Delivery.extract_run_id)
            .join(Subscriber, Subscriber.uuid == Delivery.subscriber_uuid)
            .where(ExtractRun.production_date.between(min(days), max(days)),
                   Delivery.outcome.in_(DELIVERED_OUTCOMES))
            .order_by(ExtractRun.production_date, Subscriber.name)).all()
    return [DayVolume(day, name, persons, size or 0, number)
            for day, name, persons, size, number in rows]


# -- extracts --------------------------------------------------------------------------
@dataclass(frozen=True)
class ExtractRow:
    """One received extract: its latest check, and whether it was processed."""

    file_name: str
    production_date: dt.date | None
    previous_date: dt.date | None
    size_bytes: int | None
    persons: int | None
    records: int | None
    verdict: str
    checked_at: dt.datetime | None
    checks: int
    problems: tuple[extract_checks.Problem, ...]
    expectations: tuple[extract_checks.Expectation, ...]
    quarantined_to: str | None
    #: True when the run's report marked it processed (every subscriber delivered).
    processed: bool
    #: An earlier rejected arrival of a file since received again (kept on the page:
    #: what was wrong with it is still worth seeing).
    superseded: bool = False

    @property
    def expectations_summary(self) -> str:
        """``7/7 passed`` (or ``6/7 passed, 1 warned``): the details on demand."""
        total = len(self.expectations)
        states = [e.state for e in self.expectations]
        text = f"{states.count('passed')}/{total} passed"
        for state in ("warned", "failed"):
            if states.count(state):
                text += f", {states.count(state)} {state}"
        return text


def extracts(engine: Engine) -> list[ExtractRow]:
    """Every received extract, newest production date first: the latest check of each
    file, plus any processed extract checked before checks were recorded."""
    checks = extract_checks.recent(engine, limit=1000)
    with Session(engine) as s:
        runs = {r.file_name: r for r in s.scalars(select(ExtractRun))}
    latest: dict[str, extract_checks.CheckRecord] = {}
    count: dict[str, int] = {}
    rejected_before: list[extract_checks.CheckRecord] = []
    for c in checks:  # newest first
        if c.file_name in latest and c.verdict == extract_checks.REJECTED:
            rejected_before.append(c)
        latest.setdefault(c.file_name, c)
        count[c.file_name] = count.get(c.file_name, 0) + 1
    rows = []
    for c in [*latest.values(), *rejected_before]:
        name = c.file_name
        run = runs.get(name) if c.verdict == extract_checks.ACCEPTED else None
        rows.append(ExtractRow(name, c.production_date, c.previous_date, c.size_bytes,
                               c.persons, c.records, c.verdict, c.checked_at, count[name],
                               c.problems, c.expectations, c.quarantined_to,
                               run is not None and run.delivered_at is not None,
                               superseded=latest[name] is not c))
    for name, run in runs.items():
        if name not in latest:
            rows.append(ExtractRow(name, run.production_date, run.previous_date, None,
                                   run.persons, run.records, extract_checks.ACCEPTED,
                                   run.first_processed_at, 0, (), (), None,
                                   run.delivered_at is not None))
    return sorted(rows, key=lambda r: (r.production_date or dt.date.min,
                                       r.checked_at or dt.datetime.min), reverse=True)


@dataclass(frozen=True)
class TimelineDay:
    """One delivery day on the chain: ``processed``, ``rejected``, ``held`` (chain gap),
    or ``missing`` (nothing received: a gap)."""

    day: dt.date
    state: str
    file_name: str | None = None
    #: False when this extract's previous production date is not the day before it.
    chained: bool = True


def chain_timeline(rows: list[ExtractRow], settings: Settings, *, today: dt.date,
                   days: int = TIMELINE_DAYS) -> list[TimelineDay]:
    """The production-date chain over the last ``days`` delivery days (oldest first),
    starting at the first extract received: every gap is a ``missing`` day."""
    by_day = {r.production_date: r for r in sorted(rows, key=lambda r: r.processed)
              if r.production_date and not r.superseded}
    if not by_day:
        return []
    window = sorted(page_days(settings, today, 0, days))
    window = [d for d in window if d >= min(by_day)]
    processed = sorted(d for d, r in by_day.items() if r.verdict == extract_checks.ACCEPTED)
    out = []
    for day in window:
        r = by_day.get(day)
        if r is None:
            out.append(TimelineDay(day, "missing"))
            continue
        state = "processed" if r.verdict == extract_checks.ACCEPTED else r.verdict
        # The chain rule (product.md §6): PRODDTOFORRIG names the last processed extract.
        before = [d for d in processed if d < day]
        chained = r.previous_date is None or not before or r.previous_date == before[-1]
        out.append(TimelineDay(day, state, r.file_name, chained))
    return out


# -- subscribers -----------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryLine:
    at: dt.datetime
    operation: str
    arguments: str
    result: str
    caller: str
    transport: str | None

    @property
    def sentence(self) -> str:
        return history.sentence(self.operation, self.arguments, self.result)


@dataclass(frozen=True)
class SubscriberRow:
    uuid: str
    name: str
    serves: str | None
    mode: str
    active: bool
    target: str
    #: Current filters per type label (``filters.TYPES`` order).
    filter_counts: dict[str, int]
    ssh_keys: list[str]
    certificates: list[str]
    last_delivery: str | None
    history: list[HistoryLine]
    #: The registration's contact person ("name, e-mail, phone"), if registered.
    contact: str | None = None
    #: The latest readiness check's verdict (``cprsub subscriber check``), if run.
    readiness: str | None = None


def certificate_line(cert: Certificate, now: dt.datetime) -> str:
    """A current certificate with its expiry; inside a warning threshold, how soon
    (the same thresholds the housekeeping alert uses)."""
    days_left = (cert.not_after - now).days if cert.not_after >= now else -1
    reached = expiry.threshold_reached(days_left)
    warning = ("" if reached is None else " — EXPIRED" if reached == 0
               else f" — expires in {days_left} day(s)")
    return (f"SHA256:{cert.sha256} ({cert.subject}) valid until "
            f"{cert.not_after:%Y-%m-%d}{warning}")


def subscribers(engine: Engine, *, history: int = 20, now: dt.datetime | None = None
                ) -> list[SubscriberRow]:
    """Each IT system with its mode, current filter counts, key and certificate
    fingerprints (with their expiry at ``now``, naive UTC), last delivery and its
    latest ``history`` audited operations."""
    now = now or as_naive_utc(dt.datetime.now(dt.UTC))
    with Session(engine) as s:
        subs = list(s.scalars(select(Subscriber).order_by(Subscriber.name)))
        counts = {t.label: dict(s.execute(
            select(t.model.subscriber_id, func.count())
            .where(t.model.removed_at.is_(None)).group_by(t.model.subscriber_id)).all())
            for t in filters.TYPES}
        keys = _current(s, SshKey, lambda k: f"{k.key_type} {k.fingerprint}")
        certs = _current(s, Certificate, lambda c: certificate_line(c, now))
        last = {uuid: (day, outcome) for uuid, day, outcome in s.execute(
            select(Delivery.subscriber_uuid, ExtractRun.production_date, Delivery.outcome)
            .join(ExtractRun).order_by(ExtractRun.production_date))}
        readiness = dict(s.execute(
            select(AuditEntry.subscriber_uuid, AuditEntry.result)
            .where(AuditEntry.operation == "ReadinessCheck")
            .order_by(AuditEntry.at, AuditEntry.id)).tuples().all())
        rows = []
        for sub in subs:
            audit = s.scalars(select(AuditEntry).where(AuditEntry.subscriber_uuid == sub.uuid)
                              .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                              .limit(history))
            day, outcome = last.get(sub.uuid, (None, None))
            rows.append(SubscriberRow(
                sub.uuid, sub.name, sub.serves,
                modes.label(sub.delivery_mode), sub.active,
                _target(sub), {label: c.get(sub.id, 0) for label, c in counts.items()},
                keys.get(sub.id, []), certs.get(sub.id, []),
                f"{day} {outcome}" if day else None,
                [HistoryLine(a.at, a.operation, scrub(a.arguments), scrub(a.result),
                             scrub(a.caller), a.transport) for a in audit],
                _contact(sub.registration), readiness.get(sub.uuid)))
    return rows


def _contact(registration: str | None) -> str | None:
    """The contact person of a stored registration document, as one line."""
    try:
        contact = (json.loads(registration) if registration else {}).get("contact") or {}
    except ValueError:
        return None
    parts = [str(contact[k]) for k in ("name", "email", "phone") if contact.get(k)]
    return ", ".join(parts) or None


def _current(s: Session, model: Any, shown: Callable[[Any], str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for row in s.scalars(select(model).where(model.removed_at.is_(None))
                         .order_by(model.added_at)):
        out.setdefault(row.subscriber_id, []).append(shown(row))
    return out


#: How the console names each of a target's stored fields.
_FIELD_NAMES = {"account": "pick-up account", "conn": "SFTP connection", "dir": "folder"}


def _target(sub: Subscriber) -> str:
    return ", ".join(f"{_FIELD_NAMES[name]} {value}"
                     for name, value in modes.target_fields(sub))

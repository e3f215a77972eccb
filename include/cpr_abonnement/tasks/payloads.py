"""What the daily DAG's tasks hand each other through XCom, as typed records.

Each is a frozen dataclass with ``to_xcom()`` (a plain JSON-able dict, PNR-free: paths,
names, counts and digests) and ``from_xcom()``, so task bodies read fields, not string
keys, and a misspelt field fails at once instead of on the next day's run.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from cpr_abonnement.delivery import modes
from cpr_abonnement.delivery.base import DeliveryTarget
from cpr_abonnement.records.ledger import DELIVERED_OUTCOMES


@dataclass(frozen=True)
class ReceivedExtract:
    """The day's extract, validated and staged (``parse_and_validate`` → later tasks)."""

    day: dt.date
    file_name: str
    extract: str  #: staged copy (ObjectStoragePath URL)
    sha256: str
    task_number: str
    previous_date: dt.date
    persons: int
    records: int
    platform_records: dict[str, int] = field(default_factory=dict)

    def to_xcom(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(), "file_name": self.file_name,
            "extract": self.extract, "sha256": self.sha256,
            "task_number": self.task_number, "previous_date": self.previous_date.isoformat(),
            "persons": self.persons, "records": self.records,
            "platform_records": dict(self.platform_records),
        }

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> ReceivedExtract:
        return cls(
            day=dt.date.fromisoformat(data["day"]), file_name=data["file_name"],
            extract=data["extract"], sha256=data["sha256"], task_number=data["task_number"],
            previous_date=dt.date.fromisoformat(data["previous_date"]),
            persons=data["persons"], records=data["records"],
            platform_records=dict(data.get("platform_records") or {}),
        )


@dataclass(frozen=True)
class DeliveryItem:
    """One subscriber's files of the day and where they go (one mapped ``deliver``)."""

    subscriber: str  #: UserSystemUUID
    name: str
    target: DeliveryTarget | None
    data: str  #: staged delta (ObjectStoragePath URL)
    metadata: str  #: staged ``.metadata``
    file_name: str
    persons: int
    records: int
    sha256: str
    day: dt.date
    task_number: str

    def to_xcom(self) -> dict[str, Any]:
        return {
            "subscriber": self.subscriber, "name": self.name,
            "target": self.target.to_xcom() if self.target else None,
            "data": self.data, "metadata": self.metadata, "file_name": self.file_name,
            "persons": self.persons, "records": self.records, "sha256": self.sha256,
            "day": self.day.isoformat(), "task_number": self.task_number,
        }

    def to_wire(self) -> str:
        """The item as one JSON text: how the filter step's list carries it.

        Every ``deliver`` task fetches the whole list (the Task SDK hands a mapped task
        its element alone only when the upstream task is mapped too), and the API server
        validates, the supervisor relays and the task decodes every object in it: as one
        string per subscriber the list of 1,000 has 1,000 objects instead of 15,000
        (the API server's model alone: 7.1 → 2.4 ms per fetch)."""
        return json.dumps(self.to_xcom(), separators=(",", ":"))

    @classmethod
    def from_wire(cls, item: str | dict[str, Any]) -> DeliveryItem:
        """An item from the filter step's list; a dict is an item of a run filtered
        before items travelled as text (a task of it cleared after an upgrade)."""
        return cls.from_xcom(json.loads(item) if isinstance(item, str) else item)

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> DeliveryItem:
        target = data["target"]
        return cls(
            subscriber=data["subscriber"], name=data["name"],
            target=DeliveryTarget.from_xcom(target) if target else None,
            data=data["data"], metadata=data["metadata"], file_name=data["file_name"],
            persons=data["persons"], records=data["records"], sha256=data["sha256"],
            day=dt.date.fromisoformat(data["day"]), task_number=data["task_number"],
        )


@dataclass(frozen=True)
class DeliveryResult:
    """How one subscriber's delivery ended (the ledger's outcome)."""

    subscriber: str
    outcome: str

    def to_xcom(self) -> dict[str, Any]:
        return {"subscriber": self.subscriber, "outcome": self.outcome}

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> DeliveryResult:
        return cls(data["subscriber"], data["outcome"])


#: Characters Markdown would read as markup inside a table cell.
_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|#"})


def _cell(text: str) -> str:
    return str(text).replace("\n", " ").translate(_MARKDOWN_SPECIAL)


@dataclass(frozen=True)
class NoteRow:
    """One subscriber's line of the run note."""

    name: str
    outcome: str
    persons: int
    records: int
    mode: str
    attempts: int | None = None
    #: "; waited for service window until HH:MM" when the push waited, else empty.
    waited: str = ""
    #: Why it was not delivered (the ledger's detail, short); empty when delivered.
    reason: str = ""

    @property
    def delivered(self) -> bool:
        return self.outcome in DELIVERED_OUTCOMES

    def markdown(self) -> str:
        outcome = self.outcome + (f" after {self.attempts} attempt(s)"
                                  if self.attempts and not self.delivered else "")
        outcome += self.waited
        if self.reason:
            outcome += f": {self.reason} (runbook step \"Delivery failed\")"
        return (f"| {_cell(self.name)} | {_cell(outcome)} | {self.persons} | {self.records} "
                f"| {_cell(modes.label(self.mode))} |")

    def to_xcom(self) -> dict[str, Any]:
        return {"name": self.name, "outcome": self.outcome, "persons": self.persons,
                "records": self.records, "mode": self.mode, "attempts": self.attempts,
                "waited": self.waited, "reason": self.reason}

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> NoteRow:
        return cls(**data)


TABLE_HEAD = ("| Subscriber | Outcome | Persons | Records | Mode |\n"
              "|---|---|---:|---:|---|")


@dataclass(frozen=True)
class DaySummary:
    """The day's report: one headline, one line per subscriber (the task log), the
    note's table rows, who was not delivered, and lines shown under the table."""

    summary: str
    subscribers: list[str]
    failed: list[str]
    processed: bool
    rows: list[NoteRow] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)

    def to_xcom(self) -> dict[str, Any]:
        return {"summary": self.summary, "subscribers": list(self.subscribers),
                "failed": list(self.failed), "processed": self.processed,
                "rows": [r.to_xcom() for r in self.rows], "remarks": list(self.remarks)}

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> DaySummary:
        return cls(data["summary"], list(data["subscribers"]), list(data["failed"]),
                   data["processed"], [NoteRow.from_xcom(r) for r in data.get("rows", [])],
                   list(data.get("remarks", [])))

    @staticmethod
    def no_subscribers(day: dt.date, first_registered: dt.datetime | None) -> str:
        """The headline's end for a day nobody was subscribed on (not "0 of 0")."""
        if first_registered is None:
            return "no subscriber is registered yet: nothing to deliver"
        if first_registered.date() > day:
            return (f"no subscriber existed yet on {day} (the first was registered on "
                    f"{first_registered:%Y-%m-%d}): nothing to deliver")
        return f"no subscriber was active on {day}: nothing to deliver"

    def note(self, limit: int = 1000) -> str:
        """The run's note in the UI, which renders Markdown: the headline, then a table
        with one row per subscriber, those not delivered first. Airflow keeps at most
        ``limit`` characters, so rows that do not fit are left out whole and counted
        (the ``report`` task's log has every line)."""
        rows = sorted(self.rows, key=lambda r: r.delivered)  # stable: failed first
        tail = "".join(f"\n\n{_cell(r)}" for r in self.remarks)
        text = _cell(self.summary)
        if not rows:
            return _fit(text + tail, limit)
        text += "\n\n" + TABLE_HEAD
        for shown, row in enumerate(rows):
            left = len(rows) - shown
            more = f"\n\n… and {left} more subscriber(s): see the report task's log"
            line = "\n" + row.markdown()
            if len(text) + len(line) + len(more) + len(tail) > limit:
                return _fit(text + more + tail, limit)
            text += line
        return _fit(text + tail, limit)


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 2] + " …"

"""What the daily DAG's tasks hand each other through XCom, as typed records.

Each is a frozen dataclass with ``to_xcom()`` (a plain JSON-able dict, PNR-free: paths,
names, counts and digests) and ``from_xcom()``, so task bodies read fields, not string
keys, and a misspelt field fails at once instead of on the next day's run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cpr_abonnement.delivery.base import DeliveryTarget


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


@dataclass(frozen=True)
class DaySummary:
    """The day's report: one headline, one line per subscriber, who was not delivered."""

    summary: str
    subscribers: list[str]
    failed: list[str]
    processed: bool

    def to_xcom(self) -> dict[str, Any]:
        return {"summary": self.summary, "subscribers": list(self.subscribers),
                "failed": list(self.failed), "processed": self.processed}

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> DaySummary:
        return cls(data["summary"], list(data["subscribers"]), list(data["failed"]),
                   data["processed"])

    def note(self, limit: int = 1000) -> str:
        """The run's note in the UI: the summary line, then one line per subscriber."""
        text = "\n".join([self.summary, *self.subscribers])
        return text if len(text) <= limit else text[: limit - 2] + " …"

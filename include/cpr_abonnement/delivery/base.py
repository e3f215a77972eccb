"""The interface every delivery mode implements (see :mod:`cpr_abonnement.delivery`).

What a mode does is its own business; what it reports is not: per file a
:class:`FileOutcome`, and a one-line description of the target for the ledger and the
logs. So the ledger, the report and the DAG's retry policy never depend on the mode.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar


@dataclass(frozen=True)
class FileOutcome:
    """One delivered file: its name, size and SHA-256, and whether it was already
    there (an idempotent repeat) rather than placed by this attempt."""

    name: str
    nbytes: int
    sha256: str
    already_there: bool


@dataclass(frozen=True)
class DeliveryTarget:
    """Where one subscriber's files go and by which mode.

    ``conn_id`` is the Airflow connection of the host (credentials and host keys live
    there), ``directory`` the subscriber's folder on it.
    """

    mode: str
    conn_id: str
    directory: str

    def to_xcom(self) -> dict[str, Any]:
        return {"mode": self.mode, "conn_id": self.conn_id, "directory": self.directory}

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> DeliveryTarget:
        return cls(data["mode"], data["conn_id"], data["directory"])


class DeliveryMode(ABC):
    """One way of delivering a subscriber's files (registered by :attr:`name`)."""

    #: The mode's name in :data:`cpr_abonnement.delivery.MODES` and in targets.
    name: ClassVar[str]
    #: Whether the ledger learns when the subscriber removes a delivered file (pick-up):
    #: then a re-run does not place a file again that was fetched and removed.
    tracks_removal: ClassVar[bool] = False

    @abstractmethod
    def describe(self, target: DeliveryTarget) -> str:
        """The target as one line, for the ledger and the logs (no secrets)."""

    @abstractmethod
    def deliver(self, files: list[Path], target: DeliveryTarget, *, subscriber: str
                ) -> list[FileOutcome]:
        """Deliver ``files`` in order (the data file first, its ``.metadata`` last);
        raise a :class:`~cpr_abonnement.errors.DeliveryError` subclass on failure."""

    def announce(self, engine: Any, target: DeliveryTarget, file_name: str) -> None:
        """After a successful delivery of ``file_name`` (both files in place): record
        what the mode tracks beyond the delivery itself in the ledger (pick-up: when
        the file became available). Nothing by default."""
        return None

"""The interface every delivery mode implements (see :mod:`cpr_abonnement.delivery`).

What a mode does is its own business; what it reports is not: per file a
:class:`FileOutcome`, and a one-line description of the target for the ledger and the
logs. So the ledger, the report and the DAG's retry policy never depend on the mode.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol


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

    #: The mode's name in :mod:`cpr_abonnement.delivery.modes` and in targets.
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


#: Which of a subscriber's stored fields make a mode's target: an Airflow connection and
#: a folder on that host, a login on our pick-up server, or a folder only.
TargetKind = Literal["connection", "account", "folder"]


class StoredTarget(Protocol):
    """The fields of a subscriber a target is made of (a
    :class:`~cpr_abonnement.subscriptions.recipient.Recipient`, or the stored row):
    named here so that delivery does not depend on the subscriptions."""

    uuid: str
    delivery_mode: str
    sftp_conn_id: str | None
    remote_dir: str
    pickup_account: str | None


@dataclass(frozen=True)
class ModeSpec:
    """One delivery mode as the rest of the service sees it."""

    #: Stored in ``subscriber.delivery_mode`` and typed in the CLI, REST and documents.
    name: str
    #: What the console, the report and alerts call it (``pick-up``).
    label: str
    #: One line for the CLI's and REST's help: what a subscriber of this mode gets.
    help: str
    #: The ledger's target line starts ``<scheme>://``.
    scheme: str
    #: The stored fields its target is made of.
    target_kind: TargetKind
    #: The keys of the registration document's ``delivery`` section besides ``mode``.
    document_keys: tuple[str, ...]
    #: Deliveries connect to the subscriber's own server, so they wait for its service
    #: windows to end; a mode that places files on our side does not.
    reaches_subscriber: bool
    #: ``module:Class`` of the implementation, imported on the first delivery only.
    implementation: str

    @property
    def has_account(self) -> bool:
        """Its subscribers log in to our pick-up server (and need SSH keys)."""
        return self.target_kind == "account"

    @property
    def needs_connection(self) -> bool:
        return self.target_kind == "connection"

    def target(self, subscriber: StoredTarget) -> DeliveryTarget | None:
        """Where ``subscriber``'s files go, or None when a field it needs is missing (its
        delivery then fails, recorded, without retry)."""
        if self.target_kind == "account":
            account = subscriber.pickup_account
            return DeliveryTarget(self.name, "", account) if account else None
        if self.target_kind == "connection":
            if not subscriber.sftp_conn_id:
                return None
            return DeliveryTarget(self.name, subscriber.sftp_conn_id, subscriber.remote_dir)
        return DeliveryTarget(self.name, "", subscriber.remote_dir)

    def deliverer(self) -> DeliveryMode:
        """The implementation (one instance per process, imported on first use)."""
        return _implementation(self.implementation)


@cache
def _implementation(path: str) -> DeliveryMode:
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)()

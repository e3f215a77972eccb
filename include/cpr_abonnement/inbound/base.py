"""The interface every inbound location implements (see :mod:`cpr_abonnement.inbound`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Observation:
    """One look at an inbound file: size and mtime (for stability) and its last bytes
    (to tell a whole extract from a cut-off one)."""

    size: int
    mtime: float
    tail: bytes


class InboundLocation(ABC):
    """Where CPR's extracts arrive. Read-only except for :meth:`remove` and
    :meth:`quarantine`: a file leaves the location once it is kept elsewhere."""

    @abstractmethod
    def list_files(self) -> list[str]:
        """Names of the files there, sorted; none when the folder does not exist yet."""

    @abstractmethod
    def observe(self, name: str, tail_bytes: int) -> Observation:
        """Size and mtime of ``name`` as the location reports them, and its last
        ``tail_bytes`` bytes."""

    @abstractmethod
    def fetch(self, name: str, local: Path) -> None:
        """Copy ``name`` to the local file ``local``, leaving the original in place."""

    @abstractmethod
    def remove(self, name: str) -> None:
        """Take ``name`` out of the inbound location once its copy in staging is the
        archive (processed, or a second arrival of a processed file)."""

    @abstractmethod
    def quarantine(self, name: str, local: Path) -> None:
        """Copy ``name`` intact to the local file ``local`` and take it out of the
        inbound listing, so the sensor never judges it again."""

"""An inbound folder on this machine or a shared volume (``file:///dir``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cpr_abonnement.inbound.base import InboundLocation, Observation


class LocalFolder(InboundLocation):
    def __init__(self, directory: str) -> None:
        self.folder = Path(directory)

    def list_files(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_file())

    def observe(self, name: str, tail_bytes: int) -> Observation:
        with open(self.folder / name, "rb") as fh:
            st = os.fstat(fh.fileno())
            fh.seek(max(0, st.st_size - tail_bytes))
            return Observation(st.st_size, st.st_mtime, fh.read(tail_bytes))

    def fetch(self, name: str, local: Path) -> None:
        shutil.copyfile(self.folder / name, local)

    def remove(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)

    def quarantine(self, name: str, local: Path) -> None:
        shutil.move(str(self.folder / name), local)

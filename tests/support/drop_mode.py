"""A throwaway third delivery mode, ``drop``: files left in a folder under
``CPRSUB_TEST_DROP_ROOT``. It exists to prove that a mode is one module plus its
registration (tests/delivery/test_mode_registry.py), as a new filter type is one
definition."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cpr_abonnement.delivery.base import DeliveryMode, DeliveryTarget, FileOutcome, ModeSpec
from cpr_abonnement.delivery.files import sha256_file


class FolderDrop(DeliveryMode):
    name = "drop"

    def describe(self, target: DeliveryTarget) -> str:
        return f"drop://{target.directory}"

    def deliver(self, files: list[Path], target: DeliveryTarget, *, subscriber: str
                ) -> list[FileOutcome]:
        folder = Path(os.environ["CPRSUB_TEST_DROP_ROOT"]) / target.directory.strip("/")
        folder.mkdir(parents=True, exist_ok=True)
        outcomes = []
        for f in files:
            shutil.copyfile(f, folder / f.name)
            sha, size = sha256_file(folder / f.name)
            outcomes.append(FileOutcome(f.name, size, sha, already_there=False))
        return outcomes


SPEC = ModeSpec(
    name=FolderDrop.name, label="drop box", scheme="drop", target_kind="folder",
    help="files are left in a folder of the drop root", document_keys=("folder",),
    reaches_subscriber=False, implementation=f"{__name__}:FolderDrop")

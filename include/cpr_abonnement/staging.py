"""Staging: where a run's work files live between its tasks.

Staging is an Airflow ``ObjectStoragePath``, so workers on different machines share a
run's files through a shared volume (``file://``, the default) or object storage
(``s3://``, ``gs://``, ...). The extract is read and the deltas are written on local disk
(memory-mapped and streamed); with remote staging they are copied up and down around
that, by the helpers here. Airflow is imported when a path is built, not at import.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from cpr_abonnement.settings import Settings

_CHUNK = 1 << 20


def staged(url: str) -> ObjectStoragePath:
    """The staged file or folder ``url`` names (as passed between tasks)."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url)


def stage_dir(settings: Settings, day: dt.date) -> ObjectStoragePath:
    """The staging folder of delivery day ``day``'s run."""
    return staged(settings.staging) / f"{day:%Y-%m-%d}"


def is_local(path: ObjectStoragePath) -> bool:
    """Whether ``path`` is on this machine's file system (a local or shared folder)."""
    return path.protocol in ("", "file", "local")


def local_path(path: ObjectStoragePath, scratch: Path) -> Path:
    """Where to write ``path`` on local disk: the file itself when staging is local,
    else a file in ``scratch`` to :func:`upload` afterwards."""
    return Path(path.path) if is_local(path) else scratch / path.name


def local_copy(path: ObjectStoragePath, scratch: Path) -> Path:
    """A local file with the content of staged ``path`` (the file itself when local)."""
    if is_local(path):
        return Path(path.path)
    target = scratch / path.name
    with path.open("rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)
    return target


def upload(local: Path, path: ObjectStoragePath) -> None:
    """Copy the local file ``local`` to staged ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(local, "rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)

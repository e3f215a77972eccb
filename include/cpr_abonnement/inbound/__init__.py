"""Inbound: where CPR's change extracts arrive, behind one interface.

:class:`~cpr_abonnement.inbound.base.InboundLocation` lists, observes (size, mtime, last
bytes), fetches and quarantines files; :mod:`~cpr_abonnement.inbound.local` (a folder)
and :mod:`~cpr_abonnement.inbound.sftp` (an SFTP directory) implement it. Everything
above that is written once: :mod:`~cpr_abonnement.inbound.sensing` (has the day's
extract arrived completely?) and :mod:`~cpr_abonnement.inbound.quarantine`.

A new kind of location is one module implementing ``InboundLocation`` plus its URL
scheme in :data:`SCHEMES`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cpr_abonnement.inbound.base import InboundLocation
from cpr_abonnement.inbound.local import LocalFolder
from cpr_abonnement.inbound.sftp import SftpFolder


def _sftp(rest: str) -> InboundLocation:
    conn_id, _, directory = rest.partition("/")
    return SftpFolder(conn_id, "/" + directory if directory else ".")


#: URL scheme -> the location the rest of the URL names.
SCHEMES: dict[str, Callable[[str], InboundLocation]] = {
    "file": LocalFolder,
    "sftp": _sftp,
}


def open_location(url: str) -> InboundLocation:
    """The inbound location ``url`` names: ``file:///dir`` (or a bare ``/dir``) or
    ``sftp://<Airflow conn id>/<dir>``."""
    if url.startswith("/"):
        return LocalFolder(url)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(f"location {url!r} is neither file:///... nor sftp://<conn id>/...")
    return SCHEMES[scheme](rest)


def local_dir(url: str) -> Path:
    """The local (or shared-volume) directory of a ``file://`` location."""
    location = open_location(url)
    if not isinstance(location, LocalFolder):
        raise ValueError(f"{url}: staging and quarantine must be file:// (a shared volume)")
    return location.folder


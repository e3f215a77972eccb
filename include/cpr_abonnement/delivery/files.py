"""What every delivery mode (and the inbound side's SFTP folders) shares about files: a
file's fingerprint, the hidden temporary names attempts upload under, removing another
attempt's leftovers, and remote folders made on demand. Kept apart from the modes so
that nothing outside ``delivery/`` imports a mode's module (the registry,
:mod:`cpr_abonnement.delivery.modes`, is the only way to one)."""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paramiko import SFTPClient

log = logging.getLogger(__name__)

PART_PREFIX = "."
PART_SUFFIX = ".part"
#: Another attempt's temporary file untouched this long (server clock) is abandoned.
STALE_TEMPORARY_SECONDS = 3600
_TOKEN_BYTES = 8
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    """A file's SHA-256 and size: what "the same file" means to every delivery mode."""

    sha256: str
    nbytes: int

    def __str__(self) -> str:
        return f"SHA-256 {self.sha256[:12]}…, {self.nbytes} bytes"


def digest_of(fh) -> tuple[str, int]:
    """SHA-256 and size of an open binary file, read in chunks."""
    h, n = hashlib.sha256(), 0
    while chunk := fh.read(_CHUNK):
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), n


def sha256_file(path: str | Path) -> tuple[str, int]:
    with open(path, "rb") as fh:
        return digest_of(fh)


def remote_exists(sftp: SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
    except FileNotFoundError:
        return False
    return True


def ensure_dir(sftp: SFTPClient, directory: str) -> None:
    """Create ``directory`` and its parents where missing; an attempt running at the
    same time may create them first."""
    if directory in ("", ".", "/"):
        return
    try:
        sftp.stat(directory)
    except FileNotFoundError:
        ensure_dir(sftp, posixpath.dirname(directory.rstrip("/")))
        try:
            sftp.mkdir(directory)
        except OSError:
            if not remote_exists(sftp, directory):
                raise


def temporary_name(name: str) -> str:
    """A hidden name for this attempt's upload of ``name``, unique per attempt."""
    return f"{PART_PREFIX}{name}.{secrets.token_hex(_TOKEN_BYTES)}{PART_SUFFIX}"


def is_temporary_of(entry: str, name: str) -> bool:
    """Whether ``entry`` is a temporary file of ``name`` (of any attempt, including the
    fixed ``.<name>.part`` of earlier versions), and not one of ``<name>.metadata``."""
    stem = PART_PREFIX + name
    return entry.startswith(stem) and _ATTEMPT_TAIL.fullmatch(entry, len(stem)) is not None


#: What follows ``.<name>`` in a temporary name (:func:`temporary_name`; the attempt's
#: token is optional), compiled once: a delivery's process otherwise compiled a pattern
#: for its first listing.
_ATTEMPT_TAIL = re.compile(rf"(\.[0-9a-f]{{{2 * _TOKEN_BYTES}}})?{re.escape(PART_SUFFIX)}")


def remove_leftover(path: str | PathLike, remove: Callable[[Any], object]) -> None:
    """Remove another attempt's temporary file, best effort: one removed first by that
    attempt is fine, one we may not remove is logged and left (it never fails a
    delivery)."""
    try:
        remove(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("could not remove the temporary file %s: %s", path, exc)
        return
    log.info("removed the temporary file %s of another delivery attempt", path)

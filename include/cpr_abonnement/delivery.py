"""SFTP delivery of one subscriber's delta and ``.metadata`` (product.md §4).

A thin layer over the SFTP provider's ``SFTPHook``: the connection id names the target,
and host, credentials and the pinned host key live in that Airflow connection. In one
managed session, per file:

1. if a file with the final name exists: same size and SHA-256 means the delivery
   already happened (idempotent success); anything else is a :class:`DeliveryConflict`,
   never an overwrite;
2. otherwise upload under a temporary name (``.<name>.part``), rename it into place
   (``posix-rename`` where the server offers it), then read it back and compare size
   and SHA-256.

The data file goes first and its ``.metadata`` last, so a reader that waits for the
metadata never sees a data file that is still arriving.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cpr_abonnement.errors import DeliveryConflict, DeliveryError, DeliveryRefused

if TYPE_CHECKING:
    from paramiko import SFTPClient

PART_PREFIX = "."
PART_SUFFIX = ".part"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileOutcome:
    name: str
    nbytes: int
    sha256: str
    already_there: bool


def _digest(fh) -> tuple[str, int]:
    """SHA-256 and size of an open binary file, read in chunks."""
    h, n = hashlib.sha256(), 0
    while chunk := fh.read(_CHUNK):
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), n


def sha256_file(path: str | Path) -> tuple[str, int]:
    with open(path, "rb") as fh:
        return _digest(fh)


def _remote_sha256(sftp: SFTPClient, path: str) -> tuple[str, int]:
    with sftp.open(path, "rb") as fh:
        fh.prefetch()
        return _digest(fh)


def _exists(sftp: SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
    except FileNotFoundError:
        return False
    return True


def ensure_dir(sftp: SFTPClient, directory: str) -> None:
    if directory in ("", ".", "/"):
        return
    try:
        sftp.stat(directory)
    except FileNotFoundError:
        ensure_dir(sftp, posixpath.dirname(directory.rstrip("/")))
        sftp.mkdir(directory)


def put_file(sftp: SFTPClient, local: Path, remote_dir: str, *, subscriber: str
             ) -> FileOutcome:
    """Deliver one file atomically and verified; see the module docstring."""
    name = local.name
    final = posixpath.join(remote_dir, name)
    digest, size = sha256_file(local)
    if _exists(sftp, final):
        there, there_size = _remote_sha256(sftp, final)
        if (there, there_size) == (digest, size):
            return FileOutcome(name, size, digest, already_there=True)
        raise DeliveryConflict(
            f"{final} already exists with different content (SHA-256 {there[:12]}…, "
            f"{there_size} bytes; ours {digest[:12]}…, {size} bytes); not overwritten",
            subscriber=subscriber, file_name=name)
    part = posixpath.join(remote_dir, f"{PART_PREFIX}{name}{PART_SUFFIX}")
    sftp.put(str(local), part, confirm=False)
    try:
        # Plain SFTP rename refuses to replace an existing file, so a file that
        # appeared meanwhile (another run) is never overwritten.
        sftp.rename(part, final)
    except OSError:
        if _exists(sftp, final):
            sftp.remove(part)
            return put_file(sftp, local, remote_dir, subscriber=subscriber)  # compare it
        raise
    there, there_size = _remote_sha256(sftp, final)
    if (there, there_size) != (digest, size):
        raise DeliveryError(
            f"verification failed after upload: remote {there_size} bytes SHA-256 "
            f"{there[:12]}…, local {size} bytes {digest[:12]}…",
            subscriber=subscriber, file_name=name)
    return FileOutcome(name, size, digest, already_there=False)


def deliver(conn_id: str, remote_dir: str, files: list[Path], *, subscriber: str,
            connect_attempts: int = 1) -> list[FileOutcome]:
    """Deliver ``files`` in order over the Airflow SFTP connection ``conn_id``.

    Connection retries are left to the task's retry policy (with back-off), hence
    ``connect_attempts=1``: the hook's own retry loop would only hide the first error.
    """
    from airflow.providers.sftp.hooks.sftp import SFTPHook
    from paramiko import AuthenticationException, BadHostKeyException

    hook = SFTPHook(ssh_conn_id=conn_id, conn_retry_attempts=connect_attempts)
    try:
        with hook.get_managed_conn() as sftp:
            ensure_dir(sftp, remote_dir)
            return [put_file(sftp, f, remote_dir, subscriber=subscriber) for f in files]
    except (BadHostKeyException, AuthenticationException) as exc:
        raise DeliveryRefused(f"{type(exc).__name__}: {exc}", subscriber=subscriber,
                              file_name=files[0].name if files else "-") from exc

"""Delivery mode ``push``: upload one subscriber's delta and ``.metadata`` to its SFTP
server (product.md §4).

A thin layer over the SFTP provider's ``SFTPHook``: the connection id names the target,
and host, credentials and the pinned host key live in that Airflow connection. In one
managed session, per file:

1. if a file with the final name exists: same size and SHA-256 means the delivery
   already happened (idempotent success); anything else is a :class:`DeliveryConflict`,
   never an overwrite;
2. otherwise upload under a temporary name of this attempt alone
   (``.<name>.<16 hex digits>.part``), read that back and compare size and SHA-256, and
   only then rename it into place with plain SFTP rename, which refuses to replace an
   existing file; if the final name appeared meanwhile (another attempt won), step 1
   decides; finally check that the final name holds a file of our size. (It is our
   verified temporary file: the rename cannot have replaced anything, and no attempt
   ever writes under the final name, so it is not read back a second time.)

So the final name only ever holds complete, verified bytes: two overlapping attempts (a
zombie or re-queued task, a task cleared while running, two runs of the same day) each
write their own temporary file, and an attempt killed mid-upload leaves only its
temporary file behind.

Temporary files of other attempts are removed (:func:`remove_temporaries`) when they
cannot matter any more: all of them once the final file holds the verified bytes (the
folder is listed again for that only when the listing after the upload showed some),
and before that only those untouched for :data:`STALE_TEMPORARY_SECONDS` by the server's
clock (a live upload keeps its file's mtime fresh, and no task runs longer: the
``deliver`` task's timeout is one hour). Removing a live attempt's file never corrupts
anything: that attempt then fails its check of the temporary file, finds the final
file or not, and ends as "already delivered", a conflict, or a retriable failure.

The data file goes first and its ``.metadata`` last, so a reader that waits for the
metadata never sees a data file that is still arriving.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

from cpr_abonnement.delivery.base import DeliveryMode, DeliveryTarget, FileOutcome, ModeSpec
from cpr_abonnement.delivery.files import (
    STALE_TEMPORARY_SECONDS,
    Fingerprint,
    digest_of,
    ensure_dir,
    is_temporary_of,
    remote_exists,
    remove_leftover,
    sha256_file,
    temporary_name,
)
from cpr_abonnement.errors import DeliveryConflict, DeliveryError, DeliveryRefused

if TYPE_CHECKING:
    from paramiko import SFTPAttributes, SFTPClient

log = logging.getLogger(__name__)
# paramiko says "Connected", "Authentication successful", "Opened/closed sftp" at INFO for
# every session: four task-log lines per subscriber that the delivery's own line already
# covers (and each costs the task and its supervisor a message). Its warnings and errors
# still show; a refused login or host key is our exception. Set once, at import: setting
# a level clears every logger's cache, which each delivery's process paid again.
logging.getLogger("paramiko").setLevel(logging.WARNING)


def _remote_sha256(sftp: SFTPClient, path: str, size: int | None = None
                   ) -> tuple[str, int]:
    """SHA-256 and size of a remote file. ``size``, when the caller has just listed it,
    saves the read-ahead from asking the server for it, and a file that fits one read
    request (a ``.metadata`` file, most days' deltas) is read with that one request:
    paramiko's read-ahead starts a thread per file and asks again at the end of it."""
    with sftp.open(path, "rb") as fh:
        if size is not None and size <= fh.MAX_REQUEST_SIZE:
            data = fh.read(size)
            return hashlib.sha256(data).hexdigest(), len(data)
        fh.prefetch(size)
        return digest_of(fh)


def remove_temporaries(sftp: SFTPClient, remote_dir: str, name: str, *,
                       untouched_before: float | None = None, ours: str | None = None,
                       listing: list[SFTPAttributes] | None = None) -> int:
    """Remove other attempts' temporary files of ``name`` (only those whose mtime is
    before ``untouched_before``, when given), never ``ours``; return how many were
    left in place. ``listing``: the folder as just listed (else it is listed here).
    Best effort: a file another attempt removed first, or one we may not remove, does
    not fail the delivery."""
    left = 0
    for entry in sftp.listdir_attr(remote_dir) if listing is None else listing:
        if entry.filename == ours or not is_temporary_of(entry.filename, name):
            continue
        if untouched_before is not None and (entry.st_mtime or 0) >= untouched_before:
            left += 1
            continue
        path = posixpath.join(remote_dir, entry.filename)
        remove_leftover(path, sftp.remove)
    return left


def _discard(sftp: SFTPClient, path: str) -> None:
    """Remove this attempt's temporary file after a failure, never masking the failure."""
    from paramiko import SSHException  # as in deliver(): the registry imports this module

    try:
        sftp.remove(path)
    except FileNotFoundError:
        pass
    except (OSError, EOFError, SSHException) as exc:
        log.warning("could not remove the temporary file %s: %s", path, exc)


def _settle_existing(sftp: SFTPClient, remote_dir: str, name: str, ours: Fingerprint, *,
                     subscriber: str) -> FileOutcome:
    """The final file exists: ours already (success, and other attempts' temporary
    files are now useless) or someone else's (a conflict, never overwritten)."""
    final = posixpath.join(remote_dir, name)
    there = Fingerprint(*_remote_sha256(sftp, final))
    if there != ours:
        raise DeliveryConflict(
            f"{final} already exists with different content ({there}; ours {ours}); "
            "not overwritten", subscriber=subscriber, file_name=name)
    remove_temporaries(sftp, remote_dir, name)
    return FileOutcome(name, ours.nbytes, ours.sha256, already_there=True)


def _upload_and_check(sftp: SFTPClient, local: Path, part: str, ours: Fingerprint, *,
                      remote_dir: str, subscriber: str) -> tuple[bool, int]:
    """Upload ``local`` to ``part`` and check it: whether it holds exactly our bytes
    (False when it disappeared meanwhile: another attempt's clean-up removed it), and
    how many other attempts' temporary files of the same name are still there."""
    sftp.put(str(local), part, confirm=False)
    # One listing serves the clean-up and the check: it dates our upload by the
    # server's clock and gives its size for the read-back.
    listing = sftp.listdir_attr(remote_dir)
    mine = next((e for e in listing if e.filename == posixpath.basename(part)), None)
    if mine is None:
        return False, 0
    others = remove_temporaries(
        sftp, remote_dir, local.name, ours=mine.filename, listing=listing,
        untouched_before=(mine.st_mtime or 0) - STALE_TEMPORARY_SECONDS)
    try:
        got = Fingerprint(*_remote_sha256(sftp, part, mine.st_size))
    except FileNotFoundError:
        return False, 0
    if got != ours:
        raise DeliveryError(f"the uploaded temporary file {part} holds {got}, not {ours}; "
                            "not renamed into place", subscriber=subscriber,
                            file_name=local.name)
    return True, others


def _rename_into_place(sftp: SFTPClient, part: str, final: str, *, subscriber: str) -> bool:
    """Plain SFTP rename, which refuses to replace an existing file (both OpenSSH and
    the embedded server): True when renamed, False when the final name exists."""
    try:
        sftp.rename(part, final)
    except OSError as exc:
        if remote_exists(sftp, final):
            return False
        raise DeliveryError(f"could not rename {part} into place: {exc}",
                            subscriber=subscriber,
                            file_name=posixpath.basename(final)) from exc
    return True


def put_file(sftp: SFTPClient, local: Path, remote_dir: str, *, subscriber: str
             ) -> FileOutcome:
    """Deliver one file atomically and verified; see the module docstring."""
    name = local.name
    final = posixpath.join(remote_dir, name)
    ours = Fingerprint(*sha256_file(local))
    if remote_exists(sftp, final):
        return _settle_existing(sftp, remote_dir, name, ours, subscriber=subscriber)
    part = posixpath.join(remote_dir, temporary_name(name))
    try:
        intact, others = _upload_and_check(sftp, local, part, ours, remote_dir=remote_dir,
                                           subscriber=subscriber)
        placed = intact and _rename_into_place(sftp, part, final, subscriber=subscriber)
    except BaseException:
        _discard(sftp, part)
        raise
    if not placed:
        _discard(sftp, part)
        if not remote_exists(sftp, final):
            raise DeliveryError(f"the temporary file {part} was removed during the upload "
                                "(by another attempt's clean-up?); nothing was renamed into "
                                "place, retry", subscriber=subscriber, file_name=name)
        return _settle_existing(sftp, remote_dir, name, ours, subscriber=subscriber)
    size = sftp.stat(final).st_size
    if size != ours.nbytes:
        raise DeliveryError(f"after the rename {final} holds {size} bytes, ours "
                            f"{ours.nbytes}", subscriber=subscriber, file_name=name)
    if others:
        remove_temporaries(sftp, remote_dir, name)
    return FileOutcome(name, ours.nbytes, ours.sha256, already_there=False)


def deliver(conn_id: str, remote_dir: str, files: list[Path], *, subscriber: str,
            connect_attempts: int = 1) -> list[FileOutcome]:
    """Deliver ``files`` in order over the Airflow SFTP connection ``conn_id``.

    Connection retries are left to the task's retry policy (with back-off), hence
    ``connect_attempts=1``: the hook's own retry loop would only hide the first error.
    """
    from airflow.providers.sftp.hooks.sftp import SFTPHook
    from paramiko import AuthenticationException, BadHostKeyException, SSHException

    hook = SFTPHook(ssh_conn_id=conn_id, conn_retry_attempts=connect_attempts)
    try:
        with hook.get_managed_conn() as sftp:
            ensure_dir(sftp, remote_dir)
            return [put_file(sftp, f, remote_dir, subscriber=subscriber) for f in files]
    except (BadHostKeyException, AuthenticationException) as exc:
        raise DeliveryRefused(f"{type(exc).__name__}: {exc}", subscriber=subscriber,
                              file_name=files[0].name if files else "-") from exc
    except (SSHException, EOFError, OSError) as exc:
        # Unreachable host, reset connection, server gone mid-session: retried with
        # back-off by the task's policy, but named as a delivery of this file to this
        # target rather than a bare socket or SSH error.
        # The connection id, not the folder: the folder may be named by a UUID, and the
        # ledger keeps the whole target anyway.
        raise DeliveryError(f"connection {conn_id}: {type(exc).__name__}: {exc}",
                            subscriber=subscriber,
                            file_name=files[0].name if files else "-") from exc


class SftpPush(DeliveryMode):
    """Push to the subscriber's SFTP server: the target's ``conn_id`` is the Airflow
    SFTP connection, its ``directory`` the remote directory."""

    name = "push"

    def describe(self, target: DeliveryTarget) -> str:
        return f"sftp://{target.conn_id}/{target.directory}"

    def deliver(self, files: list[Path], target: DeliveryTarget, *, subscriber: str
                ) -> list[FileOutcome]:
        return deliver(target.conn_id, target.directory, files, subscriber=subscriber)


SPEC = ModeSpec(
    name=SftpPush.name, label="push", scheme="sftp", target_kind="connection",
    help="we upload to the IT system's own SFTP server (an Airflow connection and a folder)",
    document_keys=("connection", "host", "port", "folder", "host_key", "login",
                   "password_env"),
    reaches_subscriber=True, implementation=f"{__name__}:SftpPush")

"""Delivery mode ``pickup``: place one subscriber's delta and ``.metadata`` in its
account's ``IN/`` on the pick-up storage, where it fetches them over SFTP (issue 13;
Serviceplatformen's way since 2016).

Layout (shared with the pick-up SFTP server)::

    <pickup root>/<account>/            the account's chroot (created 0755 if missing)
    <pickup root>/<account>/IN/<file>   what the subscriber lists, downloads and removes
    <pickup root>/.partial/<account>/   this mode's temporary files, outside every chroot

Per file, the same rules as ``push`` (:mod:`~cpr_abonnement.delivery.sftp_push`):

1. a file with the final name exists: same size and SHA-256 means the delivery already
   happened (idempotent success); anything else is a :class:`DeliveryConflict`, never
   an overwrite;
2. otherwise write a temporary file of this attempt alone (``.<name>.<16 hex>.part``),
   fsync it, read it back and compare size and SHA-256, then ``os.link`` it to the
   final name, which fails if that name exists (so two overlapping attempts never
   replace each other's file: the loser finds the winner's file and step 1 decides),
   remove the temporary name and read the final file back once more.

The temporary files live outside ``IN/`` (and outside the chroot), not beside the final
file: clients list ``IN/`` and download everything not ending in ``.metadata``
(serviceplatformen-compat.md §2), so a half-written ``.D…part`` there would be fetched.
A hard link needs the same file system: the temporary folder is under the same root.

The data file goes first and its ``.metadata`` last, so a reader that waits for both
(CPR Broker) never sees a data file that is still arriving; once both are in place the
ledger records the file as available (:meth:`PickupDelivery.announce`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
from pathlib import Path

from cpr_abonnement.delivery.base import DeliveryMode, DeliveryTarget, FileOutcome, ModeSpec
from cpr_abonnement.delivery.files import (
    STALE_TEMPORARY_SECONDS,
    Fingerprint,
    is_temporary_of,
    remove_leftover,
    sha256_file,
    temporary_name,
)
from cpr_abonnement.errors import DeliveryConflict, DeliveryError, InvalidPickupAccount
from cpr_abonnement.pickup.names import validate_account_name
from cpr_abonnement.pickup.strays import is_account_created
from cpr_abonnement.settings import Settings

log = logging.getLogger(__name__)

INBOX = "IN"
PARTIAL = ".partial"
FOLDER_MODE = 0o755
FILE_MODE = 0o644


def account_folder(root: Path, account: str, *, subscriber: str = "-") -> Path:
    """``<root>/<account>/IN``, created where missing (the account folder and ``IN``
    0755; existing folders keep the owner and mode the server's set-up gave them).

    Under OpenSSH the root is root's (sshd's chroot rule) and the pick-up server makes
    each account's folder itself; an account registered moments ago may not have one
    yet, which is a :class:`DeliveryError` the retry outlives, not a bare
    ``PermissionError``."""
    inbox = root / account / INBOX
    for folder in (root, root / account, inbox):
        if not folder.is_dir():
            try:
                folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
            except PermissionError as exc:
                raise DeliveryError(
                    f"{folder} does not exist yet and cannot be made by the delivery: the "
                    "pick-up server makes an account's folder within "
                    "CPRSUB_PICKUP_SYNC_SECONDS of its registration (the retry waits for "
                    "it)", subscriber=subscriber, file_name="-") from exc
    return inbox


def _partial_folder(root: Path, account: str) -> Path:
    folder = root / PARTIAL / account
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def remove_temporaries(folder: Path, name: str, *, untouched_before: float | None = None
                       ) -> None:
    """Remove attempts' temporary files of ``name`` in ``folder`` (only those last
    modified before ``untouched_before``, when given); best effort."""
    for entry in folder.iterdir():
        if not is_temporary_of(entry.name, name):
            continue
        try:
            if untouched_before is not None and entry.stat().st_mtime >= untouched_before:
                continue
        except FileNotFoundError:
            continue
        remove_leftover(entry, os.unlink)


def _write_temporary(local: Path, part: Path) -> None:
    """Copy ``local`` to the new file ``part`` (never an existing one) and fsync it."""
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as out, open(local, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
        out.flush()
        os.fchmod(out.fileno(), FILE_MODE)  # readable by the account's login whatever umask
        os.fsync(out.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _settle_existing(final: Path, partial: Path, ours: Fingerprint, *, subscriber: str
                     ) -> FileOutcome:
    """The final file exists: ours (success) or someone else's (conflict, kept)."""
    there = Fingerprint(*sha256_file(final))
    if there != ours:
        cause = ("; created by the pick-up account itself (a refused upload): the "
                 "housekeeping DAG's sweep removes it, then clear this task"
                 ) if is_account_created(final) else ""
        raise DeliveryConflict(f"{final} already exists with different content ({there}; "
                               f"ours {ours}); not overwritten{cause}",
                               subscriber=subscriber, file_name=final.name)
    remove_temporaries(partial, final.name)
    return FileOutcome(final.name, ours.nbytes, ours.sha256, already_there=True)


def place_file(local: Path, inbox: Path, partial: Path, *, subscriber: str) -> FileOutcome:
    """Place one file in ``inbox`` atomically and verified; see the module docstring."""
    final = inbox / local.name
    ours = Fingerprint(*sha256_file(local))
    if final.exists():
        return _settle_existing(final, partial, ours, subscriber=subscriber)
    part = partial / temporary_name(local.name)
    try:
        _write_temporary(local, part)
        remove_temporaries(partial, local.name,
                           untouched_before=time.time() - STALE_TEMPORARY_SECONDS)
        got = Fingerprint(*sha256_file(part))
        if got != ours:
            raise DeliveryError(f"the temporary file {part} holds {got}, not {ours}; not "
                                "placed", subscriber=subscriber, file_name=local.name)
        try:
            os.link(part, final)  # never replaces: fails if the final name exists
        except FileExistsError:
            return _settle_existing(final, partial, ours, subscriber=subscriber)
        _fsync_dir(inbox)
    except FileNotFoundError as exc:
        # Another attempt placed the file and removed every temporary file of its name,
        # ours included: the final file decides (ours: success; else a conflict).
        if final.exists():
            return _settle_existing(final, partial, ours, subscriber=subscriber)
        raise DeliveryError(f"the temporary file {part} disappeared during the delivery (by "
                            "another attempt's clean-up?); nothing placed, retry",
                            subscriber=subscriber, file_name=local.name) from exc
    finally:
        part.unlink(missing_ok=True)
    there = Fingerprint(*sha256_file(final))
    if there != ours:
        raise DeliveryError(f"verification failed after placing: {final} holds {there}, "
                            f"ours {ours}", subscriber=subscriber, file_name=local.name)
    remove_temporaries(partial, local.name)
    return FileOutcome(local.name, ours.nbytes, ours.sha256, already_there=False)


class PickupDelivery(DeliveryMode):
    """Place files for pick-up: the target's ``directory`` is the account; the storage
    root is ``Settings.pickup_root`` (``CPRSUB_PICKUP_ROOT``), read at delivery time."""

    name = "pickup"
    tracks_removal = True

    def describe(self, target: DeliveryTarget) -> str:
        return f"pickup://{target.directory}/{INBOX}"

    def deliver(self, files: list[Path], target: DeliveryTarget, *, subscriber: str
                ) -> list[FileOutcome]:
        root = Path(Settings.from_env().pickup_root)
        try:
            account = validate_account_name(target.directory)
        except InvalidPickupAccount as exc:  # never a path outside the storage
            raise DeliveryError(str(exc), subscriber=subscriber,
                                file_name=files[0].name if files else "-") from exc
        inbox = account_folder(root, account, subscriber=subscriber)
        partial = _partial_folder(root, account)
        return [place_file(f, inbox, partial, subscriber=subscriber) for f in files]

    def announce(self, engine, target: DeliveryTarget, file_name: str) -> None:
        """Both files are in ``IN/``: the ledger's ``available_at`` (first time only)."""
        from cpr_abonnement.records.ledger import record_pickup_event

        record_pickup_event(engine, account=target.directory, file_name=file_name,
                            event="available", at=dt.datetime.now(dt.UTC))


SPEC = ModeSpec(
    name=PickupDelivery.name, label="pick-up", scheme="pickup", target_kind="account",
    help="the IT system fetches its files from IN/ on our pick-up SFTP server (its "
         "account and SSH keys)",
    document_keys=("account", "ssh_keys"), reaches_subscriber=False,
    implementation=f"{__name__}:PickupDelivery")

"""Unix side of the OpenSSH pick-up server: sshd needs a system account per login to
chroot to, so each pick-up account gets one (no password, no shell) and its folder:
``<root>/<account>`` owned by root and not writable by the account (sshd's chroot rule),
``IN/`` owned by the account (so it may remove files; the delivered files are not its
own, so it cannot overwrite them), ``dev/`` for the ``dev/log`` socket of the log
collector. The accounts made here carry :data:`~cpr_abonnement.pickup.accounts.UNIX_ACCOUNT_MARK`
as their GECOS comment; any other existing account of that name is refused, never
reused (sshd would log an IT system in as it)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cpr_abonnement.delivery import modes
from cpr_abonnement.errors import ReservedPickupAccount
from cpr_abonnement.pickup import INBOX
from cpr_abonnement.pickup.names import UNIX_ACCOUNT_MARK, validate_account_name
from cpr_abonnement.store.models import Subscriber

#: Group of the processes that deliver into ``IN/`` (Airflow's image runs with group 0).
DELIVERY_GID = 0


def active_accounts(engine: Engine) -> list[str]:
    """Login names of the active pick-up subscribers."""

    with Session(engine) as s:
        return sorted(n for n in s.scalars(select(Subscriber.pickup_account).where(
            Subscriber.active.is_(True), Subscriber.delivery_mode.in_(modes.with_accounts()))) if n)


def ensure_account(root: Path, name: str) -> bool:
    """Create the system account and folders of ``name`` if missing; True if created.

    Raises :class:`~cpr_abonnement.errors.ReservedPickupAccount`, making nothing, for a
    reserved name or an existing account that is not ours (no GECOS mark): reusing
    ``daemon`` or an operator's account would let a subscriber's key log in as it."""
    name = validate_account_name(name)
    home = Path(root) / name
    created = False
    try:
        pwd.getpwnam(name)  # ours: validate_account_name refused anything else
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home), "--shell",
                        "/usr/sbin/nologin", "--user-group", "--password", "*",
                        "--comment", UNIX_ACCOUNT_MARK, name],
                       check=True, capture_output=True)  # "!" would read as locked
        created = True
    home.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chown(home, 0, 0)
    home.chmod(0o755)
    inbox = home / INBOX
    inbox.mkdir(exist_ok=True)
    # The account may remove; the delivery (Airflow's workers run with group 0 in
    # docker-compose.yml) writes through the group; neither can touch the other's files.
    shutil.chown(inbox, name, DELIVERY_GID)
    inbox.chmod(0o770)
    (home / "dev").mkdir(mode=0o755, exist_ok=True)
    return created


def sync_accounts(root: Path, engine: Engine, refused: Callable[[str], None]) -> list[str]:
    """The Unix account and folder of every active pick-up account; the names made now.

    A reserved or foreign name (registered before the rule existed) is passed to
    ``refused`` and skipped: the other accounts are still served, and no key logs in as
    it (authorized-keys gives none)."""
    created = []
    for name in active_accounts(engine):
        try:
            if ensure_account(root, name):
                created.append(name)
        except ReservedPickupAccount as exc:
            refused(str(exc))
    return created

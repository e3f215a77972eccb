"""Files a pick-up account created itself in its ``IN/``: removed, and reported.

The production sshd runs inside ``cprsub pickup confine`` (Landlock), where no account
can create anything. Without it (``--allow-unconfined`` on a kernel without Landlock)
OpenSSH's internal-sftp allow-list (``-p``) is the only guard, and it works per request
type: ``open`` is one type whatever its flags, so an account may open a new name for
writing in its own ``IN/`` (it owns ``IN/`` so that it may remove files, and Unix
permissions cannot tell creating a name from removing one). The write itself is
refused, so what can appear is an **empty** file; it cannot replace a delivered file,
nor appear outside its ``IN/``. What remains is a stray name, which could pre-empt a
future delivery's name (that delivery would then stop as a conflict). This sweep is
that case's guard, and a second line behind the sandbox.

Such a file is told apart by its owner: it belongs to the owner of ``IN/`` (the
account's Unix user), while the delivery's files belong to the delivery's user. Where
both are the same user (the embedded server, a test without accounts) nothing is judged
a stray. The housekeeping DAG removes strays daily and alerts with the account names;
``cprsub pickup track`` warns at once when the log shows an open for writing.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.errors import PickupStrayFiles
from cpr_abonnement.pickup import INBOX

log = logging.getLogger(__name__)


def is_account_created(path: Path) -> bool:
    """Whether ``path`` is a regular file owned by the owner of the folder it is in,
    that owner not being this process's user (the delivery's): in an ``IN/``, a file
    the account created itself."""
    owner = path.parent.stat().st_uid
    st = path.lstat()
    return owner != os.geteuid() and stat.S_ISREG(st.st_mode) and st.st_uid == owner


def account_created(root: Path) -> list[tuple[str, Path]]:
    """(account, file) of each file an account created in its ``IN/``."""
    found = []
    for inbox in sorted(Path(root).glob(f"*/{INBOX}")):
        if inbox.is_symlink() or not inbox.is_dir():
            continue
        found += [(inbox.parent.name, f) for f in sorted(inbox.iterdir())
                  if is_account_created(f)]
    return found


def sweep_strays(root: Path) -> list[str]:
    """Remove every file an account created in its ``IN/``; raise
    :class:`PickupStrayFiles` naming them (the alert) if there were any, else return
    an empty list."""
    removed = []
    for account, f in account_created(root):
        f.unlink(missing_ok=True)
        removed.append(f"{account}/{INBOX}/{scrub(f.name)}")
        log.warning("pick-up account %s created %s in its %s/ (removed)", account,
                    scrub(f.name), INBOX)
    if removed:
        accounts = sorted({r.split("/", 1)[0] for r in removed})
        raise PickupStrayFiles(
            f"{len(removed)} file(s) created by pick-up account(s) {', '.join(accounts)} "
            f"in their own {INBOX}/ were removed (uploads are refused; the sshd log has "
            "the open requests): " + ", ".join(removed))
    return removed

"""Pick-up account names: the one rule for a login name, which is also a folder name
on the storage and, on the OpenSSH pick-up server, a Unix account."""

from __future__ import annotations

import pwd
import re

from cpr_abonnement.errors import InvalidPickupAccount, ReservedPickupAccount
from cpr_abonnement.subscriptions import rules

#: A login name that is also a safe folder name: no ``/``, no ``..``, no leading dot
#: (so never a hidden folder, nor one of the storage's own), no upper case (file
#: systems and SSH servers disagree about case).
_ACCOUNT = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

#: The GECOS comment of the Unix accounts the pick-up sync makes
#: (:func:`cpr_abonnement.pickup.unix.ensure_account`): what tells an account of ours
#: from the machine's own, which is never reused.
UNIX_ACCOUNT_MARK = "cprsub pick-up account"
#: Names refused whether or not this machine has such an account: the system accounts
#: of Debian (the images' base) and the services of this deployment. The pick-up server
#: runs in its own container, whose accounts the machine registering an account (API,
#: CLI) may lack.
RESERVED_ACCOUNTS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
    "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "systemd-network",
    "systemd-resolve", "systemd-timesync", "messagebus", "sshd", "postgres", "redis",
    "nginx", "airflow", "cprsub-keys",
})


def validate_account_name(value: str) -> str:
    """A pick-up login name, which is also the account's folder name on the storage and,
    on the OpenSSH pick-up server, the Unix account sshd logs the IT system in as: so
    never a reserved name, nor a Unix account of this machine that is not ours
    (:data:`UNIX_ACCOUNT_MARK`). The one rule for every way a name comes in (CLI, REST,
    registration document) and for the sync that makes the Unix accounts."""
    name = rules.matching(_ACCOUNT, str(value), InvalidPickupAccount, "pick-up account",
                          "must be 1-64 of a-z, 0-9, '.', '_', '-', starting with a "
                          "letter or digit")
    if name in RESERVED_ACCOUNTS:
        raise ReservedPickupAccount(f"pick-up account {rules.shown(name)} is reserved "
                                    "(a system or service account); choose another",
                                    account=name)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return name
    if entry.pw_gecos != UNIX_ACCOUNT_MARK:
        raise ReservedPickupAccount(f"pick-up account {rules.shown(name)} is an existing "
                                    "Unix account of this machine, not one made for "
                                    "pick-up; choose another", account=name)
    return name

"""Pick-up accounts as the SFTP server sees them: login name, subscriber, public keys.

An account exists only while its subscriber is active and in delivery mode ``pickup``:
a subscriber switched back to push, or disabled, has no account, so its keys are no
longer returned and it can no longer log in (whatever keys are still registered). The
server (embedded or sshd's ``AuthorizedKeysCommand``) asks on every login, so a change
takes effect at the next login without syncing key files.
"""

from __future__ import annotations

import pwd
import re
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cpr_abonnement.errors import (
    InvalidDeliveryMode,
    InvalidPickupAccount,
    ReservedPickupAccount,
)
from cpr_abonnement.identities.ssh_keys import SshKeyInfo
from cpr_abonnement.store.models import SshKey, Subscriber
from cpr_abonnement.subscriptions import rules

#: The delivery modes a subscriber can have; only ``pickup`` subscribers have an account.
PUSH, PICKUP = "push", "pickup"
DELIVERY_MODES = (PUSH, PICKUP)
#: A login name that is also a safe folder name: no ``/``, no ``..``, no leading dot
#: (so never a hidden folder, nor one of the storage's own), no upper case (file
#: systems and SSH servers disagree about case).
_ACCOUNT = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def validate_mode(value: str) -> str:
    """``push`` or ``pickup``."""
    if value not in DELIVERY_MODES:
        raise InvalidDeliveryMode(f"delivery mode {rules.shown(value)} is not one of "
                                  f"{', '.join(DELIVERY_MODES)}")
    return value


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


@dataclass(frozen=True)
class PickupAccount:
    """An active pick-up account."""

    account: str  #: login name, default the subscriber's UUID
    subscriber_uuid: str
    keys: tuple[str, ...]  #: OpenSSH public key lines, current keys only


def account(engine: Engine, name: str) -> PickupAccount | None:
    """The active pick-up account of that login name (subscriber active, mode
    ``pickup``), else None.

    Reads only the columns named here: sshd runs this for every login attempt as the
    database role ``cprsub_keys``, which may read those columns and nothing else
    (not the registration's contact person, not a filter)."""
    with Session(engine) as s:
        sub = s.execute(select(Subscriber.id, Subscriber.uuid, Subscriber.pickup_account)
                        .where(Subscriber.pickup_account == str(name),
                               Subscriber.active.is_(True),
                               Subscriber.delivery_mode == PICKUP)).first()
        if sub is None:
            return None
        keys = s.execute(select(SshKey.key_type, SshKey.key_data, SshKey.fingerprint,
                                SshKey.bits, SshKey.comment)
                         .where(SshKey.subscriber_id == sub.id, SshKey.removed_at.is_(None))
                         .order_by(SshKey.added_at, SshKey.id))
        return PickupAccount(sub.pickup_account or "", sub.uuid, tuple(
            SshKeyInfo(k.key_type, k.key_data, k.fingerprint, k.bits, k.comment).line
            for k in keys))


def authorized_keys(engine: Engine, name: str) -> list[str]:
    """Public key lines allowed for that login (empty for unknown / push / disabled, and
    for a name :func:`validate_account_name` refuses: a registration older than that
    rule must not let a key log in as ``daemon`` or an operator's account)."""
    try:
        validate_account_name(name)
    except InvalidPickupAccount:
        return []
    found = account(engine, name)
    return list(found.keys) if found else []

"""Pick-up accounts as the SFTP server sees them: login name, subscriber, public keys.

An account exists only while its subscriber is active and in a delivery mode with an
account (``pickup``, :func:`cpr_abonnement.delivery.modes.with_accounts`):
a subscriber switched back to push, or disabled, has no account, so its keys are no
longer returned and it can no longer log in (whatever keys are still registered). The
server (embedded or sshd's ``AuthorizedKeysCommand``) asks on every login, so a change
takes effect at the next login without syncing key files.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cpr_abonnement.delivery import modes
from cpr_abonnement.errors import InvalidPickupAccount
from cpr_abonnement.identities.ssh_keys import SshKeyInfo
from cpr_abonnement.pickup.names import validate_account_name
from cpr_abonnement.store.models import SshKey, Subscriber


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
                               Subscriber.delivery_mode.in_(modes.with_accounts()))).first()
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

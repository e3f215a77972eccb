"""API credentials: one token per IT system (or administrator), stored only as a hash.

A token is ``cprsub_<id>_<secret>``: the id finds the row, the secret is checked
against ``sha256(salt || secret)`` with a constant-time comparison. The secret is 256
random bits, so a fast hash is enough (a slow KDF protects guessable passwords, not
random keys); the salt keeps equal secrets from having equal hashes. The token is
shown once, when it is issued, and can be revoked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cpr_abonnement.errors import UnknownSubscriber
from cpr_abonnement.subscriptions.models import AuditEntry, Credential, Subscriber

PREFIX = "cprsub"


class Role(StrEnum):
    SUBSCRIBER = "subscriber"
    ADMIN = "admin"
    #: An Airflow user who may look but not operate (never stored as a token's role).
    VIEWER = "viewer"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an administrator, or the IT system a token belongs to."""

    role: Role
    label: str
    token_id: str
    subscriber_uuid: str | None = None

    @property
    def caller(self) -> str:
        """How the audit trail names this caller."""
        who = self.subscriber_uuid if self.role is Role.SUBSCRIBER else self.role.value
        return f"api:{who}:{self.label}"


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def issue(engine: Engine, *, role: Role, label: str, subscriber_uuid: str | None = None,
          issued_by: str = "cli", now: dt.datetime | None = None) -> str:
    """Create a credential and return the token (the only time it is visible)."""
    from cpr_abonnement.subscriptions.service import utcnow

    now = now or utcnow()
    token_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_hex(16)
    with Session(engine) as s, s.begin():
        sub_id = None
        if role is Role.SUBSCRIBER:
            sub_id = s.scalar(select(Subscriber.id).where(Subscriber.uuid == subscriber_uuid))
            if sub_id is None:
                raise UnknownSubscriber(f"no subscriber with UserSystemUUID {subscriber_uuid}")
        s.add(Credential(token_id=token_id, salt=salt, token_hash=_digest(salt, secret),
                         role=role.value, subscriber_id=sub_id, label=label, created_at=now))
        s.add(AuditEntry(at=now, caller=issued_by, subscriber_uuid=subscriber_uuid,
                         operation="IssueCredential",
                         arguments=json.dumps({"role": role.value, "token_id": token_id}),
                         result="ISSUED"))
    return f"{PREFIX}_{token_id}_{secret}"


def authenticate(engine: Engine, token: str) -> Principal | None:
    """The principal a token belongs to, or None (unknown, revoked, wrong secret)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    _, token_id, secret = parts
    with Session(engine) as s:
        row = s.execute(
            select(Credential, Subscriber.uuid, Subscriber.active)
            .outerjoin(Subscriber, Credential.subscriber_id == Subscriber.id)
            .where(Credential.token_id == token_id, Credential.revoked_at.is_(None))
        ).first()
    if row is None:
        return None
    cred, uuid, active = row
    if not hmac.compare_digest(cred.token_hash, _digest(cred.salt, secret)):
        return None
    if cred.role == Role.SUBSCRIBER and not active:
        return None  # a disabled IT system's tokens stop working with it
    return Principal(Role(cred.role), cred.label, cred.token_id, uuid)


def revoke(engine: Engine, token_id: str, *, now: dt.datetime | None = None) -> bool:
    from cpr_abonnement.subscriptions.service import utcnow

    with Session(engine) as s, s.begin():
        cred = s.scalar(select(Credential).where(Credential.token_id == token_id,
                                                 Credential.revoked_at.is_(None)))
        if cred is None:
            return False
        cred.revoked_at = now or utcnow()
        return True

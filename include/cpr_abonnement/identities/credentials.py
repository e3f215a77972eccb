"""API credentials: one token per IT system (or administrator), stored only as a hash.

A token is ``cprsub_<id>_<secret>``: the id finds the row, the secret is checked
against ``sha256(salt || secret)`` with a constant-time comparison. The secret is 256
random bits, so a fast hash is enough (a slow KDF protects guessable passwords, not
random keys); the salt keeps equal secrets from having equal hashes. The token is
shown once, when it is issued, and can be revoked.

A token verified against the database is remembered in this process for
:data:`VERIFIED_TOKEN_SECONDS`, so a client making thousands of calls costs one
lookup every few seconds instead of one per call (issue 16). The memory holds no
token: its key is an HMAC of the token under a random key of this process, so
neither a memory dump nor the timing of the lookup tells anything about a token. A
revocation in this process forgets the token at once; one made elsewhere (the CLI,
another API server), and disabling an IT system, take effect within that lifetime.
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
from cpr_abonnement.identities.memory import TimedMemory
from cpr_abonnement.store.clock import utcnow
from cpr_abonnement.store.models import AuditEntry, Credential, Subscriber

PREFIX = "cprsub"
#: How long a verified token is trusted without asking the database again.
VERIFIED_TOKEN_SECONDS = 2.0
#: Bound on remembered tokens (the memory is cleared when it is reached).
MAX_VERIFIED_TOKENS = 10_000


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


#: Process key of the token memory's keys: no token is held in memory as such.
_TOKEN_KEY = secrets.token_bytes(32)


def _token_key(engine: Engine, token: str) -> bytes:
    """The token's key in memory, per database (the same token means nothing in
    another), an HMAC under a process key."""
    name = engine.url.render_as_string(hide_password=True)
    return hmac.digest(_TOKEN_KEY, f"{name}\0{token}".encode(), "sha256")


def forget_subscriber(subscriber_uuid: str) -> None:
    """A disabled IT system's tokens stop working in this process at once (elsewhere
    within :data:`VERIFIED_TOKEN_SECONDS`)."""
    _verified.forget(lambda p: p.subscriber_uuid == subscriber_uuid)


#: Tokens this process verified recently.
_verified: TimedMemory[Principal] = TimedMemory(lambda: VERIFIED_TOKEN_SECONDS,
                                                MAX_VERIFIED_TOKENS)


def issue(engine: Engine, *, role: Role, label: str, subscriber_uuid: str | None = None,
          issued_by: str = "cli", now: dt.datetime | None = None) -> str:
    """Create a credential and return the token (the only time it is visible)."""

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


def remembered(engine: Engine, token: str) -> Principal | None:
    """The principal of a token this process verified within
    :data:`VERIFIED_TOKEN_SECONDS`, without asking the database (None: ask it with
    :func:`authenticate`). Cheap enough for the event loop: no thread hop per call."""
    return _verified.get(_token_key(engine, token))


def authenticate(engine: Engine, token: str) -> Principal | None:
    """The principal a token belongs to, or None (unknown, revoked, wrong secret)."""
    return _verified.lookup(_token_key(engine, token), lambda: _verify(engine, token))


def _verify(engine: Engine, token: str) -> Principal | None:
    """:func:`authenticate` against the database."""
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

    with Session(engine) as s, s.begin():
        cred = s.scalar(select(Credential).where(Credential.token_id == token_id,
                                                 Credential.revoked_at.is_(None)))
        if cred is None:
            return False
        cred.revoked_at = now or utcnow()
    _verified.forget(lambda p: p.token_id == token_id)
    return True

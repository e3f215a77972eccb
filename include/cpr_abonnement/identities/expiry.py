"""Client certificates about to expire: warned 90, 30 and 7 days ahead, once each.

An IT system whose certificate expires can no longer call SF6002 (the handshake fails),
and the supplier needs weeks to order and install a new one (OCES/FOCES). So the data
engineers hear of it three times, each time once: :data:`THRESHOLDS` days before the
expiry, from the housekeeping DAG's alert; ``cprsub health`` and the console show every
certificate inside the widest threshold all along. An already expired certificate that
is still registered is listed too (threshold 0).

"Once" is remembered in the audit trail (operation :data:`OPERATION`, the certificate's
fingerprint, the threshold as argument), as the contact-person notices are
(:mod:`cpr_abonnement.onboarding.notices`).

The pick-up server's host keys are plain SSH keys pinned by their fingerprint (no SSH
certificates), so nothing there expires.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cpr_abonnement.store.models import AuditEntry, Certificate, Subscriber

#: Days before expiry at which the data engineers are alerted, widest first.
THRESHOLDS = (90, 30, 7)
OPERATION = "CertificateExpiryWarning"


@dataclass(frozen=True)
class Expiring:
    """A current certificate of an active IT system inside a threshold."""

    subscriber_uuid: str
    subscriber_name: str
    sha256: str
    subject: str
    #: Naive UTC.
    not_after: dt.datetime
    days_left: int
    #: The narrowest threshold reached (0: expired).
    threshold: int
    #: Another current certificate of the system outlives this threshold (rotated).
    successor: bool

    def line(self) -> str:
        when = (f"expired {self.not_after:%Y-%m-%d}" if self.days_left < 0 else
                f"expires {self.not_after:%Y-%m-%d} (in {self.days_left} day(s))")
        then = ("a newer certificate is registered: remove this one after the switch"
                if self.successor else "register its successor (docs/it-systems.md: "
                                       "certificate rotation)")
        return (f"{self.subscriber_name} ({self.subscriber_uuid}): client certificate "
                f"SHA256:{self.sha256[:16]}… {self.subject} {when}; {then}")


def threshold_reached(days_left: int) -> int | None:
    """The narrowest threshold ``days_left`` is inside, 0 when expired, else None.

    >>> [threshold_reached(d) for d in (91, 90, 31, 30, 8, 7, 0, -1)]
    [None, 90, 90, 30, 30, 7, 7, 0]
    """
    if days_left < 0:
        return 0
    inside = [t for t in THRESHOLDS if days_left <= t]
    return min(inside) if inside else None


def expiring(engine: Engine, now: dt.datetime) -> list[Expiring]:
    """Every current certificate of an active IT system that expires within the widest
    threshold of ``now`` (naive UTC) or has expired, soonest first."""
    horizon = now + dt.timedelta(days=max(THRESHOLDS))
    with Session(engine) as s:
        rows = s.execute(
            select(Subscriber.uuid, Subscriber.name, Certificate.subscriber_id,
                   Certificate.sha256, Certificate.subject, Certificate.not_after)
            .join(Subscriber, Subscriber.id == Certificate.subscriber_id)
            .where(Certificate.removed_at.is_(None), Subscriber.active.is_(True))).all()
    latest: dict[int, dt.datetime] = {}
    for *_, owner, _, _, not_after in rows:
        latest[owner] = max(latest.get(owner, not_after), not_after)
    found = []
    for uuid, name, owner, sha256, subject, not_after in rows:
        if not_after > horizon:
            continue
        days_left = (not_after - now).days if not_after >= now else -1
        reached = threshold_reached(days_left)
        if reached is None:
            continue
        found.append(Expiring(uuid, name, sha256, subject, not_after, days_left, reached,
                              latest[owner] > not_after + dt.timedelta(days=reached)))
    return sorted(found, key=lambda e: (e.not_after, e.subscriber_name))


def due(engine: Engine, now: dt.datetime) -> list[Expiring]:
    """Those of :func:`expiring` not yet alerted at their threshold."""
    items = expiring(engine, now)
    with Session(engine) as s:
        warned = {(sha256, json.loads(arguments).get("threshold")) for sha256, arguments in
                  s.execute(select(AuditEntry.certificate_sha256, AuditEntry.arguments)
                            .where(AuditEntry.operation == OPERATION))}
    return [e for e in items if (e.sha256, e.threshold) not in warned]


def record(engine: Engine, items: list[Expiring], now: dt.datetime, caller: str) -> None:
    """Remember that these were alerted (one audit row each)."""
    with Session(engine) as s, s.begin():
        for e in items:
            s.add(AuditEntry(at=now, caller=caller, subscriber_uuid=e.subscriber_uuid,
                             operation=OPERATION, result="ALERTED",
                             certificate_sha256=e.sha256,
                             arguments=json.dumps({"threshold": e.threshold})))

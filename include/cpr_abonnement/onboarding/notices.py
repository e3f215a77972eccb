"""The contact person's notice when deliveries to its IT system keep failing.

After ``CPRSUB_SUBSCRIBER_NOTICE_DAYS`` (2) delivery days in a row whose delivery to a
subscriber has not succeeded, the contact person of its registration gets one notice
in plain language: which system, since when, what to check on their side. It holds no
PNR and nothing internal (no error text, host names or task names). One notice per run
of failures: it is sent again only after a successful delivery and new failures. The
data engineers' alert says whether the contact person was notified. The audit records
each notice (``SubscriberNotice``), which is also how "already notified" is known.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cpr_abonnement.records.ledger import DELIVERED_OUTCOMES
from cpr_abonnement.store.models import AuditEntry, Delivery, ExtractRun, Subscriber

OPERATION = "SubscriberNotice"


@dataclass(frozen=True)
class NoticeState:
    """How things stand for one subscriber after a failed delivery."""

    name: str
    failed_days: list[dt.date]
    contact_name: str | None
    contact_email: str | None
    already_notified: bool

    def due(self, days: int) -> bool:
        return (len(self.failed_days) >= days and not self.already_notified
                and bool(self.contact_email))


def state(engine: Engine, uuid: str) -> NoticeState | None:
    """The subscriber's run of failed delivery days (newest first, up to the last
    delivered one) and whether its contact was told since; None when unknown."""
    with Session(engine) as s:
        sub = s.scalar(select(Subscriber).where(Subscriber.uuid == uuid))
        if sub is None:
            return None
        rows = s.execute(select(ExtractRun.production_date, Delivery.outcome,
                                Delivery.delivered_at)
                         .join(Delivery, Delivery.extract_run_id == ExtractRun.id)
                         .where(Delivery.subscriber_uuid == uuid)
                         .order_by(ExtractRun.production_date.desc())).all()
        failed = []
        for day, outcome, _ in rows:
            if outcome in DELIVERED_OUTCOMES:
                break
            failed.append(day)
        last_ok = max((at for _, _, at in rows if at is not None), default=None)
        notified = s.scalar(select(AuditEntry.id).where(
            AuditEntry.subscriber_uuid == uuid, AuditEntry.operation == OPERATION,
            AuditEntry.at > (last_ok or dt.datetime.min)).limit(1)) is not None
        contact = (json.loads(sub.registration).get("contact") or {}) if sub.registration \
            else {}
    return NoticeState(sub.name, failed, contact.get("name"), contact.get("email"), notified)


def compose(notice: NoticeState) -> tuple[str, str]:
    """Subject and HTML body of the notice: plain language, no internals."""
    since = min(notice.failed_days)
    subject = f"CPR Abonnement: files for {notice.name} could not be delivered"
    body = (f"<p>Dear {html.escape(notice.contact_name or 'contact person')},</p>"
            f"<p>since the delivery day {since:%d-%m-%Y}, {len(notice.failed_days)} delivery "
            f"day(s) of CPR change files for your IT system {html.escape(notice.name)} could "
            "not be delivered to your SFTP server. Please check that the server is running, "
            "reachable from us and accepts our login, and that there is room in the "
            "folder. Nothing is lost: the files are delivered as soon as it works "
            "again.</p><p>Our data engineers have been alerted as well.</p>"
            "<p>CPR Abonnement</p>")
    return subject, body


def record(engine: Engine, uuid: str, notice: NoticeState, now: dt.datetime) -> None:
    with Session(engine) as s, s.begin():
        s.add(AuditEntry(at=now, caller="cpr_abonnement_daily", subscriber_uuid=uuid,
                         operation=OPERATION,
                         arguments=json.dumps({"failed_days": len(notice.failed_days)}),
                         result=f"SENT to {notice.contact_email}"[:200]))

"""The subscribers a filter snapshot covers: those registered and active at an instant.

(The filters in force at that instant: :mod:`cpr_abonnement.filters.snapshot`.)
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.sql import ColumnElement

from cpr_abonnement.store.models import DeliverySetting, Subscriber
from cpr_abonnement.subscriptions.recipient import Recipient


def subscribed_at(as_of: dt.datetime) -> ColumnElement[bool]:
    """Subscribers registered by ``as_of`` (naive UTC) and active then: a subscriber
    disabled since still counts (a re-run of an earlier day), one added since does not."""
    return and_(Subscriber.created_at <= as_of,
                or_(Subscriber.active.is_(True), Subscriber.disabled_at > as_of))


#: The delivery columns a :class:`DeliverySetting` period records.
_DELIVERY = ("sftp_conn_id", "remote_dir", "delivery_mode", "pickup_account")


def subscribers_at(conn: Connection, as_of: dt.datetime) -> tuple[list[int], list[Recipient]]:
    """The subscribers :func:`subscribed_at` ``as_of``, by UUID: database ids and rows,
    each with the delivery setting in force ``as_of`` (the subscriber's columns now when
    it has no recorded setting then)."""
    in_force = and_(DeliverySetting.subscriber_id == Subscriber.id,
                    DeliverySetting.valid_from <= as_of,
                    or_(DeliverySetting.valid_to.is_(None), DeliverySetting.valid_to > as_of))
    subs = conn.execute(
        select(Subscriber.id, Subscriber.uuid, Subscriber.name,
               *(getattr(Subscriber, c) for c in _DELIVERY),
               DeliverySetting.id.label("setting"),
               *(getattr(DeliverySetting, c).label(f"then_{c}") for c in _DELIVERY))
        .outerjoin(DeliverySetting, in_force)
        .where(subscribed_at(as_of))
        .order_by(Subscriber.uuid)
    ).all()
    return [r.id for r in subs], [_recipient(r) for r in subs]


def _recipient(row) -> Recipient:
    prefix = "then_" if row.setting is not None else ""
    delivery = {c: getattr(row, prefix + c) for c in _DELIVERY}
    return Recipient(row.uuid, row.name, **delivery)

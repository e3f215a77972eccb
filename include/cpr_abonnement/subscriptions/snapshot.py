"""The subscribers a filter snapshot covers: those registered and active at an instant.

(The filters in force at that instant: :mod:`cpr_abonnement.filters.snapshot`.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.sql import ColumnElement

from cpr_abonnement.subscriptions.models import DeliverySetting, Subscriber


@dataclass(frozen=True, slots=True)
class Subscription:
    """An active subscriber as the pipeline needs it (position = its index in a snapshot)."""

    uuid: str
    name: str
    sftp_conn_id: str | None
    remote_dir: str
    delivery_mode: str = "push"
    pickup_account: str | None = None

    @property
    def recipient(self) -> str:
        """Who the ``.metadata`` names as ``Recipients``: the pick-up account (the login
        a reader such as spsftp checks for), for push the UserSystemUUID."""
        return self.pickup_account if self.delivery_mode == "pickup" and \
            self.pickup_account else self.uuid


def subscribed_at(as_of: dt.datetime) -> ColumnElement[bool]:
    """Subscribers registered by ``as_of`` (naive UTC) and active then: a subscriber
    disabled since still counts (a re-run of an earlier day), one added since does not."""
    return and_(Subscriber.created_at <= as_of,
                or_(Subscriber.active.is_(True), Subscriber.disabled_at > as_of))


#: The delivery columns a :class:`DeliverySetting` period records.
_DELIVERY = ("sftp_conn_id", "remote_dir", "delivery_mode", "pickup_account")


def subscribers_at(conn: Connection, as_of: dt.datetime) -> tuple[list[int], list[Subscription]]:
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
    return [r.id for r in subs], [_subscription(r) for r in subs]


def _subscription(row) -> Subscription:
    prefix = "then_" if row.setting is not None else ""
    delivery = {c: getattr(row, prefix + c) for c in _DELIVERY}
    return Subscription(row.uuid, row.name, **delivery)

"""The subscribers a filter snapshot covers: those registered and active at an instant.

(The filters in force at that instant: :mod:`cpr_abonnement.filters.snapshot`.)
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.sql import ColumnElement

from cpr_abonnement.subscriptions.models import Subscriber
from cpr_abonnement.subscriptions.recipient import Recipient


def subscribed_at(as_of: dt.datetime) -> ColumnElement[bool]:
    """Subscribers registered by ``as_of`` (naive UTC) and active then: a subscriber
    disabled since still counts (a re-run of an earlier day), one added since does not."""
    return and_(Subscriber.created_at <= as_of,
                or_(Subscriber.active.is_(True), Subscriber.disabled_at > as_of))


def subscribers_at(conn: Connection, as_of: dt.datetime) -> tuple[list[int], list[Recipient]]:
    """The subscribers :func:`subscribed_at` ``as_of``, by UUID: their database ids and,
    in the same order, what the rest of the code sees of them."""
    subs = conn.execute(
        select(Subscriber.id, Subscriber.uuid, Subscriber.name, Subscriber.sftp_conn_id,
               Subscriber.remote_dir, Subscriber.delivery_mode, Subscriber.pickup_account)
        .where(subscribed_at(as_of))
        .order_by(Subscriber.uuid)
    ).all()
    return ([r.id for r in subs],
            [Recipient(r.uuid, r.name, r.sftp_conn_id, r.remote_dir, r.delivery_mode,
                       r.pickup_account) for r in subs])

"""Delivery: a subscriber's delta and ``.metadata`` to the subscriber, by its mode.

:mod:`~cpr_abonnement.delivery.base` defines the interface (a
:class:`~cpr_abonnement.delivery.base.DeliveryMode` delivers files to a
:class:`~cpr_abonnement.delivery.base.DeliveryTarget` and reports mode-neutral
:class:`~cpr_abonnement.delivery.base.FileOutcome`\\ s); each mode is one module:
:mod:`~cpr_abonnement.delivery.sftp_push` (``push``: upload to the subscriber's SFTP
server) and :mod:`~cpr_abonnement.delivery.pickup` (``pickup``: placed in the
account's ``IN/`` on our own pick-up SFTP server). A new mode is one module
implementing ``DeliveryMode`` plus its entry in :data:`MODES`, and :func:`target_of`
choosing it for the subscribers that use it.
"""

from __future__ import annotations

from cpr_abonnement.delivery.base import DeliveryMode, DeliveryTarget
from cpr_abonnement.delivery.pickup import PickupDelivery
from cpr_abonnement.delivery.sftp_push import SftpPush
from cpr_abonnement.subscriptions.recipient import Recipient

#: Delivery modes by name.
MODES: dict[str, DeliveryMode] = {mode.name: mode for mode in (SftpPush(), PickupDelivery())}

#: The ledger's target for a subscriber without one (its delivery fails, no retry).
NO_TARGET = "-"


def target_of(subscriber: Recipient) -> DeliveryTarget | None:
    """Where ``subscriber`` gets its files, or None when it has no target: a pick-up
    subscriber its account's folder (no connection: the storage is local or shared),
    any other one its SFTP server. The subscriber's stored fields are read here and
    nowhere else."""
    if subscriber.delivery_mode == PickupDelivery.name:
        account = subscriber.pickup_account
        return DeliveryTarget(PickupDelivery.name, "", account) if account else None
    if not subscriber.sftp_conn_id:
        return None
    return DeliveryTarget(SftpPush.name, subscriber.sftp_conn_id, subscriber.remote_dir)


def describe(target: DeliveryTarget | None) -> str:
    """``target`` as the ledger records it (an unknown mode, whose delivery then fails,
    is still recorded as what was asked for)."""
    if target is None:
        return NO_TARGET
    mode = MODES.get(target.mode)
    if mode is None:
        return f"{target.mode}://{target.conn_id}/{target.directory}"
    return mode.describe(target)

"""Delivery: a subscriber's delta and ``.metadata`` to the subscriber, by its mode.

:mod:`~cpr_abonnement.delivery.base` defines the interface (a
:class:`~cpr_abonnement.delivery.base.DeliveryMode` delivers files to a
:class:`~cpr_abonnement.delivery.base.DeliveryTarget` and reports mode-neutral
:class:`~cpr_abonnement.delivery.base.FileOutcome`\\ s); each mode is one module:
:mod:`~cpr_abonnement.delivery.sftp_push` (``push``: upload to the subscriber's SFTP
server) and :mod:`~cpr_abonnement.delivery.pickup` (``pickup``: placed in the
account's ``IN/`` on our own pick-up SFTP server). A new mode is one module holding
its implementation and its :class:`~cpr_abonnement.delivery.base.ModeSpec` (name,
label, target fields, registration-document keys, service-window rule), registered in
:mod:`~cpr_abonnement.delivery.modes`; nothing outside ``delivery/`` names a mode.
"""

from __future__ import annotations

from cpr_abonnement.delivery import modes
from cpr_abonnement.delivery.base import DeliveryMode, DeliveryTarget, StoredTarget

#: The ledger's target for a subscriber without one (its delivery fails, no retry).
NO_TARGET = "-"


def target_of(subscriber: StoredTarget) -> DeliveryTarget | None:
    """Where ``subscriber`` gets its files, by its mode, or None when it has no target
    (a field its mode needs is missing, or the mode is not registered)."""
    spec = modes.find(subscriber.delivery_mode)
    return spec.target(subscriber) if spec else None


def mode_of(target: DeliveryTarget) -> DeliveryMode | None:
    """The implementation that delivers to ``target``, None for an unknown mode."""
    spec = modes.find(target.mode)
    return spec.deliverer() if spec else None


def describe(target: DeliveryTarget | None) -> str:
    """``target`` as the ledger records it (an unknown mode, whose delivery then fails,
    is still recorded as what was asked for)."""
    if target is None:
        return NO_TARGET
    mode = mode_of(target)
    if mode is None:
        return f"{target.mode}://{target.conn_id}/{target.directory}"
    return mode.describe(target)

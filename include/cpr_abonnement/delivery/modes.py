"""The delivery modes a subscriber can have, each described by its own module.

A mode is data (:class:`ModeSpec`) beside its implementation (a
:class:`~cpr_abonnement.delivery.base.DeliveryMode`): its name as stored and as
typed, its label, which of a subscriber's stored fields make its target, which keys its
registration document takes and whether its deliveries reach the subscriber's own
server (then that subscriber's service windows apply). Everything outside
``delivery/`` asks this registry, never a mode's name: the service and registration
validate against it, the CLI and REST offer its names, the console shows its labels,
the ``deliver`` task asks it for the implementation and the service-window rule. So a
new mode is one module with its spec, registered here; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cpr_abonnement.delivery import pickup, sftp_push
from cpr_abonnement.delivery.base import ModeSpec
from cpr_abonnement.errors import InvalidDeliveryMode

_MODES: dict[str, ModeSpec] = {}


def register(spec: ModeSpec) -> ModeSpec:
    """Add ``spec`` (the built-in modes register below; a test may add its own)."""
    known = _MODES.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"delivery mode {spec.name!r} is already registered")
    _MODES[spec.name] = spec
    return spec


@contextmanager
def registered(spec: ModeSpec) -> Iterator[ModeSpec]:
    """``spec`` registered for the duration of the block (tests of the seam)."""
    register(spec)
    try:
        yield spec
    finally:
        _MODES.pop(spec.name, None)


def names() -> tuple[str, ...]:
    return tuple(_MODES)


def specs() -> tuple[ModeSpec, ...]:
    return tuple(_MODES.values())


def get(name: str) -> ModeSpec:
    """The mode called ``name``, or :class:`InvalidDeliveryMode` naming the known ones."""
    spec = _MODES.get(str(name))
    if spec is None:
        shown = str(name)[:20]
        raise InvalidDeliveryMode(f"delivery mode {shown!r} is not one of "
                                  f"{', '.join(_MODES)}")
    return spec


def find(name: str) -> ModeSpec | None:
    return _MODES.get(name)


def with_accounts() -> tuple[str, ...]:
    """The modes whose subscribers have a pick-up account (for the pick-up server's
    queries)."""
    return tuple(n for n, spec in _MODES.items() if spec.has_account)


def of_target(target: str) -> ModeSpec | None:
    """The mode a ledger target line (``pickup://acct/IN``) was made by, if registered."""
    scheme = target.partition("://")[0]
    return next((spec for spec in _MODES.values() if spec.scheme == scheme), None)


def label(name: str) -> str:
    """What the console and the run note call mode ``name`` (the name itself for a mode
    no longer registered: history outlives modes)."""
    spec = _MODES.get(name)
    return spec.label if spec else name


def target_fields(subscriber) -> list[tuple[str, str]]:
    """The stored fields ``subscriber``'s mode delivers by, as (name, value) for the CLI's
    and the console's one line about where its files go; an unregistered mode (history
    outlives modes) shows the connection and folder, as push."""
    spec = _MODES.get(subscriber.delivery_mode)
    kind = spec.target_kind if spec else "connection"
    if kind == "account":
        return [("account", subscriber.pickup_account or subscriber.uuid)]
    if kind == "folder":
        return [("dir", subscriber.remote_dir)]
    return [("conn", subscriber.sftp_conn_id or "-"), ("dir", subscriber.remote_dir)]


#: The mode of a subscriber registered without one.
DEFAULT = "push"


for _spec in (sftp_push.SPEC, pickup.SPEC):
    register(_spec)

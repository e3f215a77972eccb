"""The embedded pick-up server wired to the filter database: keys from
:func:`~cpr_abonnement.pickup.accounts.authorized_keys` per login, downloads and
removals into the ledger with :func:`~cpr_abonnement.records.ledger.record_pickup_event`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine

from cpr_abonnement.pickup.accounts import authorized_keys
from cpr_abonnement.pickup.server import PickupServer
from cpr_abonnement.records.ledger import record_pickup_event


def serve_from_database(engine: Engine, root: str | Path, **options) -> PickupServer:
    """A (not yet started) :class:`PickupServer` whose accounts are the database's."""

    def keys(account: str) -> list[str]:
        return authorized_keys(engine, account)

    def events(account: str, file_name: str, event: str, at: dt.datetime) -> bool:
        return record_pickup_event(engine, account=account, file_name=file_name,
                                   event=event, at=at)

    return PickupServer(root, keys=keys, events=events, **options)

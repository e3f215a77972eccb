"""A filter type is one definition: registering a new one (here a throw-away "every
person" type, the shape of SF6002 1.1's NoFilter: no arguments, no per-person key) is
picked up by the service, the snapshot and the selection without other changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session

from builders import extract, person, write
from cpr_abonnement import filters
from cpr_abonnement.extract.index import scan
from cpr_abonnement.filters import METADATA, selection
from cpr_abonnement.filters.base import Context, FilterType, Pairs
from cpr_abonnement.filters.snapshot import load_snapshot
from cpr_abonnement.store.models import Base, FilterRow, filter_indexes
from cpr_abonnement.subscriptions.service import SubscriptionService

A = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
B = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0002"
T0 = dt.datetime(2026, 11, 1)


class _EveryoneRow(FilterRow, Base):
    __tablename__ = "filter_test_everyone"
    __table_args__ = filter_indexes("filter_test_everyone", lookup=False)


# Defined only for this module: out of the shared metadata, so the schema tests never
# see it (the table is created and dropped by the fixture).
METADATA.remove(_EveryoneRow.__table__)


class Everyone(FilterType):
    group = "TestEveryone"
    model = _EveryoneRow
    arguments = ()
    listing, label, noun, cli = "test_everyone", "everyone", "everyone", "test-everyone"

    def parse(self, *raw: Any) -> dict[str, Any]:
        return {}

    def listed(self, row: tuple[Any, ...]) -> bool:
        return True

    def select(self, rows: pd.DataFrame, context: Context) -> Pairs:
        n = len(context.persons)
        subs = rows["sub"].to_numpy()
        return np.repeat(subs, n), np.tile(np.arange(n), len(subs))

    def explain(self, context: Context, rows: pd.DataFrame, who: np.ndarray
                ) -> list[list[str]]:
        return [[self.group]] * len(who)


EVERYONE = Everyone()


@pytest.fixture
def registered(engine, monkeypatch):
    _EveryoneRow.__table__.create(engine)
    monkeypatch.setattr(filters, "TYPES", (*filters.TYPES, EVERYONE))
    yield
    _EveryoneRow.__table__.drop(engine)


def test_a_registered_type_is_served_snapshotted_and_selected(registered, engine, tmp_path):
    svc = SubscriptionService(engine, caller="test", clock=lambda: T0)
    for uuid in (A, B):
        svc.add_subscriber(uuid, uuid[-4:])
    assert svc.add(A, EVERYONE).result.value == "ADDED"
    assert svc.add(A, EVERYONE).result.value == "ALREADY_EXISTED"
    svc.add_municipality(B, "851")
    assert svc.get_all_filters(A).test_everyone == [True]
    assert svc.get_all_filters(A).to_dict()["test_everyone"] == [True]
    assert svc.audit_trail(A)[-1].result == (
        "OK: 0 PNR, 0 age range, 0 municipality, 0 change-code, 0 no-filter, 1 everyone "
        "filters")

    path = write(tmp_path, extract([*person("0101901234", kom="0851"),
                                          *person("0202801234", kom="0101")]))
    index = scan(path)
    snapshot = load_snapshot(engine, T0 + dt.timedelta(days=1), index.persons["pnr"].to_numpy())
    chosen = selection.select(index.persons, index.events, snapshot, dt.date(2026, 11, 26))
    assert chosen.persons_of(0).tolist() == [0, 1]  # A: every person
    assert chosen.persons_of(1).tolist() == [0]     # B: municipality 0851 only
    context = Context(index.persons, index.events, dt.date(2026, 11, 26))
    assert selection.explain(context, snapshot, chosen, 0) == ["TestEveryone"] * 2

    assert svc.remove_all(A, "TestEveryone") == 1
    assert svc.remove(A, EVERYONE).result.value == "NON_EXISTING"
    with Session(engine) as s:
        assert s.query(_EveryoneRow).count() == 1  # closed, not deleted


def test_a_registered_type_reaches_rest_and_the_cli(registered, engine, db_url, capsys):
    """REST routes and CLI commands are built from the types registered when the app
    and the parser are made, so the new type needs no route or command of its own."""
    from fastapi.testclient import TestClient

    from cpr_abonnement.api.app import create_app
    from cpr_abonnement.cli import main
    from cpr_abonnement.identities.credentials import Role, issue

    SubscriptionService(engine, caller="test").add_subscriber(A, "A")
    token = issue(engine, role=Role.SUBSCRIBER, label="a", subscriber_uuid=A)
    client = TestClient(create_app(lambda: engine))
    added = client.post("/v1/AddTestEveryoneSubscription",
                        headers={"Authorization": f"Bearer {token}"},
                        json={"invocationContext": {"userSystemUUID": A}})
    assert added.status_code == 200 and added.json()["result"] == "ADDED"
    assert main(["filters", "remove-test-everyone", "--db", db_url, "--system", A]) == 0
    assert "REMOVED" in capsys.readouterr().out
    assert SubscriptionService(engine, caller="test").get_all_filters(A).test_everyone == []

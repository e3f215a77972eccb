"""The delivery mode is part of the filter snapshot: a day filtered "as of" an instant
is delivered the way the subscriber was configured then (push or pick-up, which
connection or account), so a backfill of an old day after a switch delivers, and
names the recipient in ``.metadata``, as it would have on that day (product.md §3:
re-delivering a day produces the same bytes)."""

from __future__ import annotations

import datetime as dt

import pytest
import xmltodict

from builders import extract, person
from cpr_abonnement.settings import Settings
from cpr_abonnement.staging import staged
from cpr_abonnement.subscriptions.service import SubscriptionService
from cpr_abonnement.tasks import daily

UUID = "eeeeeeee-0000-4000-8000-000000000005"
ACCOUNT = "silkeborg-sag"
DAY = dt.date(2026, 11, 19)
SWITCHED = dt.datetime(2026, 11, 20, 12, 0)  # naive UTC, after DAY's data interval


@pytest.fixture
def settings(tmp_path, monkeypatch):
    for d in ("inbound", "staging", "quarantine", "pickup"):
        (tmp_path / d).mkdir()
        monkeypatch.setenv(f"CPRSUB_{d.upper()}", f"file://{tmp_path / d}")
    monkeypatch.setenv("CPRSUB_PICKUP_ROOT", str(tmp_path / "pickup"))
    monkeypatch.setenv("CPRSUB_SETTLE_SECONDS", "0")
    return Settings.from_env()


def _receive(settings, tmp_path, engine, day: dt.date):
    name = f"D{day:%y%m%d}.L431101"
    (tmp_path / "inbound" / name).write_bytes(
        extract(person("0101901234"), day=day, previous=day - dt.timedelta(1)))
    return daily.receive(settings, day, name, engine, allow_gap=True)


def _item(items):
    return next(i for i in items if i.subscriber == UUID)


def _recipients(item) -> str:
    return xmltodict.parse(staged(item.metadata).read_bytes()
                           )["ns2:Trigger"]["FileDescriptor"]["Recipients"]


def test_a_backfill_delivers_by_the_mode_in_force_at_its_instant(settings, tmp_path,
                                                                  engine):
    SubscriptionService(engine, caller="test", clock=lambda: dt.datetime(2026, 1, 1)
                        ).add_subscriber(UUID, "Silkeborg Sag", delivery_mode="pickup",
                                         pickup_account=ACCOUNT)
    SubscriptionService(engine, caller="test", clock=lambda: SWITCHED).set_delivery(
        UUID, "push", sftp_conn_id="sftp_silkeborg", remote_dir="/ind")

    # the day before the switch, filtered for the first time now (a backfill)
    old = _item(daily.filter_day(settings, _receive(settings, tmp_path, engine, DAY),
                                 engine, as_of=dt.datetime(2026, 11, 20, tzinfo=dt.UTC)))
    assert (old.target.mode, old.target.directory) == ("pickup", ACCOUNT)
    assert _recipients(old) == ACCOUNT

    # a day after the switch: push, to the connection given at the switch
    new = _item(daily.filter_day(
        settings, _receive(settings, tmp_path, engine, DAY + dt.timedelta(2)), engine,
        as_of=None))
    assert (new.target.mode, new.target.conn_id, new.target.directory) == (
        "push", "sftp_silkeborg", "/ind")
    assert _recipients(new) == UUID

"""Late pick-ups: health and the alert show subscribers that have not fetched a file
for CPRSUB_PICKUP_ALERT_DAYS delivery days."""

from __future__ import annotations

import datetime as dt

import pytest

from cpr_abonnement.health import check, late_pickups
from cpr_abonnement.records import ledger
from cpr_abonnement.settings import Settings
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.pickup import record_delivered

P, Q, R = ("11111111-0000-4000-8000-000000000001", "22222222-0000-4000-8000-000000000002",
           "33333333-0000-4000-8000-000000000003")
#: Delivery days Mon 16 - Fri 20 Nov 2026, Mon 23 - Thu 26 Nov.
DAYS = [dt.date(2026, 11, d) for d in (19, 20, 23, 24, 25, 26)]


@pytest.fixture(autouse=True)
def _default_deployment(monkeypatch):
    for name in ("CPRSUB_EXTRA_CLOSURES", "CPRSUB_DELIVERY_TIME", "CPRSUB_PICKUP_ALERT_DAYS"):
        monkeypatch.delenv(name, raising=False)




def test_late_pickups_counted_in_delivery_days(engine):
    svc = SubscriptionService(engine, caller="t", clock=lambda: dt.datetime(2026, 11, 1))
    svc.add_subscriber(P, "Picks up late", delivery_mode="pickup", pickup_account="late")
    svc.add_subscriber(Q, "Picks up daily", delivery_mode="pickup", pickup_account="daily")
    svc.add_subscriber(R, "Push", sftp_conn_id="x")
    for day in DAYS:
        for uuid in (P, Q, R):
            name = record_delivered(engine, day, uuid)
        ledger.record_pickup_event(engine, account="daily", file_name=name,
                                     event="downloaded", at=dt.datetime(2026, 11, 27))
    # P last fetched the file of 23 Nov; its 24, 25, 26 Nov files wait.
    for day in DAYS[:3]:
        ledger.record_pickup_event(engine, account="late", file_name=f"D{day:%y%m%d}.L431101",
                                     event="downloaded", at=dt.datetime(2026, 11, 24))
    settings = Settings.from_env()
    assert late_pickups(engine, dt.date(2026, 11, 26), settings) == []  # 24 Nov: 2 days
    late = late_pickups(engine, dt.date(2026, 11, 27), settings)        # 24 Nov: 3 days
    assert [(x.subscriber_uuid, x.oldest_file, x.delivery_days) for x in late] == [
        (P, "D261124.L431101", 3)]
    state = check(engine, now=dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC))
    assert state.late_pickups and "Picks up late" in state.late_pickups[0]
    # a subscriber's late pick-up is not our delivery failing: not a health problem
    assert not any("pick" in p for p in state.problems)


def test_the_days_report_lists_late_pickups(engine):
    from cpr_abonnement.tasks.daily import report
    from cpr_abonnement.tasks.payloads import ReceivedExtract

    svc = SubscriptionService(engine, caller="t", clock=lambda: dt.datetime(2026, 11, 1))
    svc.add_subscriber(P, "Picks up late", delivery_mode="pickup", pickup_account="late")
    for day in DAYS:
        record_delivered(engine, day, P)
    received = ReceivedExtract(day=DAYS[-1], file_name="D261126.L431101", extract="x",
                               sha256="0" * 64, task_number="431101",
                               previous_date=DAYS[-2], persons=1, records=1,
                               platform_records={})
    summary = report(received, [], engine, now=dt.datetime(2026, 11, 26, 21))
    assert any(line.startswith("late pick-up: Picks up late") for line in summary.subscribers)
    assert summary.processed  # nothing failed


def test_lateness_counts_from_when_the_file_became_available(engine):
    """A backfill places old days' files today: they are late only once they have waited
    CPRSUB_PICKUP_ALERT_DAYS delivery days since then, by the same rule in health and
    on the console's Deliveries page."""
    from cpr_abonnement.console import views

    svc = SubscriptionService(engine, caller="t", clock=lambda: dt.datetime(2026, 11, 1))
    svc.add_subscriber(P, "Backfilled", delivery_mode="pickup", pickup_account="late")
    for day in DAYS[:2]:  # 19 and 20 Nov, placed by a backfill on Tue 24 Nov
        name = record_delivered(engine, day, P)
        ledger.record_pickup_event(engine, account="late", file_name=name, event="available",
                                   at=dt.datetime(2026, 11, 24, 9))
    settings = Settings.from_env()
    assert late_pickups(engine, dt.date(2026, 11, 26), settings) == []  # 2 days waiting
    matrix = views.delivery_matrix(engine, settings, today=dt.date(2026, 11, 26))
    assert not any(c.late for row in matrix.rows for c in row.cells.values())
    late = late_pickups(engine, dt.date(2026, 11, 27), settings)        # 3 days waiting
    assert [(x.oldest_file, x.waiting_files, x.delivery_days) for x in late] == [
        ("D261119.L431101", 2, 3)]
    matrix = views.delivery_matrix(engine, settings, today=dt.date(2026, 11, 27))
    assert [d for row in matrix.rows for d, c in row.cells.items() if c.late] == DAYS[:2]

"""The health check a monitoring system polls."""

from __future__ import annotations

import datetime as dt

from cpr_abonnement.calendar import DeliveryCalendar
from cpr_abonnement.health import check, due_day
from cpr_abonnement.subscriptions import extracts
from cpr_abonnement.subscriptions.service import SubscriptionService

CAL = DeliveryCalendar.default()
A, B = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"


def test_due_day_waits_for_run_time_and_grace():
    def at(y, m, d, h):
        return dt.datetime(y, m, d, h, tzinfo=dt.UTC)
    # Thursday 26 Nov 2026 21:00 CET = 20:00Z; with 8 h grace due at Fri 04:00Z
    assert due_day(at(2026, 11, 27, 3), CAL, "21:00", 8) == dt.date(2026, 11, 25)
    assert due_day(at(2026, 11, 27, 4), CAL, "21:00", 8) == dt.date(2026, 11, 26)
    assert due_day(at(2026, 12, 27, 12), CAL, "21:00", 8) == dt.date(2026, 12, 25)


def test_health_follows_the_ledger(engine):
    svc = SubscriptionService(engine, caller="t")
    svc.add_subscriber(A, "A")
    svc.add_subscriber(B, "B")
    now = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    state = check(engine, now=now, calendar=CAL)
    assert not state.healthy and state.problems == ["no extract processed for 2026-11-26"]
    t = dt.datetime(2026, 11, 26, 20)
    extracts.register(engine, task_number="431101", production_date=dt.date(2026, 11, 26),
                      previous_date=dt.date(2026, 11, 25), file_name="D261126.L431101",
                      sha256="0" * 64, persons=1, records=1, clock=lambda: t, as_of=t)
    for uuid, outcome in ((A, "DELIVERED"), (B, "FAILED")):
        extracts.record_delivery(engine, task_number="431101",
                                 production_date=dt.date(2026, 11, 26), subscriber_uuid=uuid,
                                 file_name="D261126.L431101", sha256="0" * 64, persons=1,
                                 records=1, target="x", outcome=outcome, detail="", now=t)
    state = check(engine, now=now, calendar=CAL)
    assert not state.healthy and (state.subscribers, state.delivered) == (2, 1)
    assert any(B in p for p in state.problems)
    extracts.record_delivery(engine, task_number="431101", production_date=dt.date(2026, 11, 26),
                             subscriber_uuid=B, file_name="D261126.L431101", sha256="0" * 64,
                             persons=1, records=1, target="x", outcome="DELIVERED", detail="",
                             now=t)
    extracts.mark_delivered(engine, "431101", dt.date(2026, 11, 26), t)
    assert check(engine, now=now, calendar=CAL).healthy
